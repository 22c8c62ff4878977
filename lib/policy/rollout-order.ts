// Groups roll out in `after` order: a group starts only when every group it names is done.
// Ties are broken by staging first, then by name, so the order is the same on every machine.

import type { PolicyIssue } from './errors.ts';
import type { GroupSpec } from './model.ts';

export function rolloutOrder(groups: { readonly [name: string]: GroupSpec }): { order: string[]; issues: PolicyIssue[] } {
  const issues: PolicyIssue[] = [];
  const names = Object.keys(groups).sort();
  const deps = new Map<string, string[]>();
  for (const name of names) {
    const after = groups[name].after ?? [];
    after.forEach((dep, i) => {
      if (!Object.hasOwn(groups, dep)) issues.push({ path: ['groups', name, 'after', i], message: `group "${dep}" is not defined in groups` });
    });
    // Own keys only: `in` would find "constructor" on every object.
    deps.set(name, after.filter((dep) => Object.hasOwn(groups, dep)));
  }

  const order: string[] = [];
  const done = new Set<string>();
  const rank = (n: string) => (groups[n].staging ? 0 : 1);
  let pending = names;
  while (pending.length > 0) {
    const ready = pending.filter((n) => deps.get(n)!.every((d) => done.has(d))).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    if (ready.length === 0) {
      const cycle = findCycle(pending, deps);
      issues.push({ path: ['groups', cycle[0], 'after'], message: `groups wait for each other in a cycle: ${[...cycle, cycle[0]].join(' -> ')}` });
      order.push(...pending);
      break;
    }
    // Take one group at a time so a staging group that became ready always goes before others.
    order.push(ready[0]);
    done.add(ready[0]);
    pending = pending.filter((n) => n !== ready[0]);
  }
  return { order, issues };
}

function findCycle(pending: readonly string[], deps: ReadonlyMap<string, readonly string[]>): string[] {
  const open = new Set(pending);
  let node = pending[0];
  const seen: string[] = [];
  while (!seen.includes(node)) {
    seen.push(node);
    node = deps.get(node)!.find((d) => open.has(d))!;
  }
  return seen.slice(seen.indexOf(node));
}
