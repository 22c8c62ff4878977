// Redundant sets: hosts that must never reboot together. Written in `rebootSets` by name, or
// derived: the hosts with the role "dns" that no written set names form the set "dns", probed on
// port 53. Each member gets its place (its slot of the shared window) and the peers it must see
// answering before it reboots; lib/runtime/reboot.sh does the rest on the host, without us.

import type { PolicyIssue, PolicyPath } from './errors.ts';
import type { FleetSpec } from './model.ts';
import { MIN_SLOT_SECONDS, rebootSlot } from './reboot-slot.ts';
import type { RebootSetPeer, ResolvedHost } from './resolved.ts';

const SET_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const DNS_PORT = 53;

interface Candidate {
  readonly name: string;
  readonly members: readonly string[];
  /** Port every member is probed on; undefined: each member's ssh port. */
  readonly port?: number;
  /** Where an issue about member i (or the set, i undefined) is reported. */
  readonly at: (i?: number) => PolicyPath;
}

/** Hosts with their reboot set filled in (updates.rebootSet), and every problem found. */
export function resolveRebootSets(spec: FleetSpec, hosts: readonly ResolvedHost[]): { hosts: ResolvedHost[]; issues: PolicyIssue[] } {
  const issues: PolicyIssue[] = [];
  const byName = new Map(hosts.map((h) => [h.name, h]));
  const written = spec.rebootSets ?? {};
  const candidates: Candidate[] = [];
  const listed = new Map<string, string>();

  for (const name of Object.keys(written).sort()) {
    const set = written[name];
    const at = (i?: number): PolicyPath => (i === undefined ? ['rebootSets', name] : ['rebootSets', name, 'hosts', i]);
    if (!SET_NAME.test(name)) issues.push({ path: at(), message: `reboot set name ${JSON.stringify(name)} must be lower-case letters, digits and "-"` });
    if (set.port !== undefined && !(Number.isInteger(set.port) && set.port >= 1 && set.port <= 65535)) issues.push({ path: ['rebootSets', name, 'port'], message: `port must be a whole number from 1 to 65535, got ${JSON.stringify(set.port)}` });
    const members = Array.isArray(set.hosts) ? set.hosts : [];
    let ok = true;
    members.forEach((host, i) => {
      if (!byName.has(host)) {
        issues.push({ path: at(i), message: `host "${host}" is not a host of this fleet` });
        ok = false;
      } else if (listed.has(host)) {
        issues.push({ path: at(i), message: `host "${host}" is already in reboot set "${listed.get(host)}"; a host belongs to one set at most` });
        ok = false;
      } else listed.set(host, name);
    });
    if (members.length < 2) {
      issues.push({ path: ['rebootSets', name, 'hosts'], message: 'a reboot set needs at least two hosts' });
      ok = false;
    }
    if (ok) candidates.push({ name, members, ...(set.port !== undefined && { port: set.port }), at });
  }

  // The derived set: nameservers that no written set names, when they reboot at all.
  const dns = hosts.filter((h) => h.roles.includes('dns') && !listed.has(h.name) && h.updates && h.updates.reboot !== 'never').map((h) => h.name);
  if (dns.length >= 2 && !Object.hasOwn(written, 'dns')) candidates.push({ name: 'dns', members: dns, port: DNS_PORT, at: (i) => ['hosts', dns[i ?? 0], 'roles'] });

  const member = new Map<string, NonNullable<NonNullable<ResolvedHost['updates']>['rebootSet']>>();
  for (const set of candidates) {
    const members = set.members.map((n) => byName.get(n)!);
    const first = members[0];
    let ok = true;
    members.forEach((h, i) => {
      if (!h.updates) {
        issues.push({ path: set.at(i), message: `host "${h.name}" has no update policy (it is exempt from updates), so it never reboots; leave it out of reboot set "${set.name}"` });
        ok = false;
      } else if (h.updates.reboot === 'never') {
        issues.push({ path: set.at(i), message: `host "${h.name}" never reboots (updates.reboot: never); leave it out of reboot set "${set.name}"` });
        ok = false;
      } else if (first.updates && JSON.stringify(h.updates.window) !== JSON.stringify(first.updates.window)) {
        issues.push({ path: set.at(i), message: `host "${h.name}" has another maintenance window than "${first.name}"; the members of reboot set "${set.name}" share one window, split into a slot each` });
        ok = false;
      }
    });
    if (!ok || !first.updates) continue;
    const slot = rebootSlot(first.updates.window.durationSeconds, 0, members.length);
    if (slot.endSeconds < MIN_SLOT_SECONDS) {
      issues.push({ path: set.at(), message: `the maintenance window of ${first.updates.window.durationSeconds / 60} minutes split among ${members.length} hosts of reboot set "${set.name}" gives slots shorter than ${MIN_SLOT_SECONDS / 60} minutes; lengthen the window` });
      continue;
    }
    members.forEach((h, index) => {
      member.set(h.name, {
        set: set.name,
        host: h.name,
        index,
        count: members.length,
        peers: members
          .filter((p) => p !== h)
          .map((p): RebootSetPeer => {
            const port = set.port ?? p.port;
            if (p.provision) return { host: p.name, port, provisioned: true };
            return { host: p.name, address: p.address ?? p.name, port, ...(p.hostKey !== undefined && { hostKey: p.hostKey }) };
          }),
      });
    });
  }
  return {
    hosts: hosts.map((h) => {
      const rebootSet = member.get(h.name);
      return rebootSet && h.updates ? { ...h, updates: { ...h.updates, rebootSet } } : h;
    }),
    issues,
  };
}
