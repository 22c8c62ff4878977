// Alert routes, checked where they are written (defaults, a group or a host), so an error names
// the layer the user must edit: a route is exactly one kind, reminders only where the receiver
// does not repeat by itself, and SMTP credentials go together.

import type { PolicyIssue, PolicyPath } from './errors.ts';
import { policyLayers } from './layering.ts';
import type { FleetSpec } from './model.ts';
import type { ResolvedFleet } from './resolved.ts';

const KINDS = ['webhook', 'alertmanager', 'email'] as const;

export function alertRouteIssues(spec: FleetSpec): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  for (const { path, policy } of policyLayers(spec)) {
    (policy.monitoring?.routes ?? []).forEach((route, i) => {
      const at: PolicyPath = [...path, 'monitoring', 'routes', i];
      const kinds = KINDS.filter((kind) => route[kind] !== undefined);
      if (kinds.length !== 1) {
        issues.push({ path: at, message: `an alert route needs exactly one of webhook, alertmanager and email, got ${kinds.length === 0 ? 'none' : kinds.join(' and ')}` });
      }
      // A malformed or zero repeatEvery is reported by resolve, which reads every duration.
      if (route.repeatEvery !== undefined && route.alertmanager !== undefined) {
        issues.push({ path: [...at, 'repeatEvery'], message: "Alertmanager repeats notifications itself (its route's repeat_interval) and gets the alert on every check run; repeatEvery is for webhook and e-mail routes" });
      }
      if (route.email !== undefined && route.token !== undefined) {
        issues.push({ path: [...at, 'token'], message: 'an e-mail route logs in with email.user and email.password; token is for webhook and Alertmanager routes' });
      }
      const email = route.email;
      if (email && (email.user === undefined) !== (email.password === undefined)) {
        issues.push({ path: [...at, 'email', email.user === undefined ? 'password' : 'user'], message: 'SMTP login needs both email.user and email.password' });
      }
    });
  }
  return issues;
}

/**
 * Warnings: an e-mail route without `server` mails through smtp://localhost on the host that sends
 * the alert (the one its check runs on). A host without the role "mail" has no mail server there
 * unless one was installed besides upkeep, and its alerts would reach nobody (run-check.sh then
 * fails the check's unit, but only once there is an alert to send). One warning per route where it
 * is written, naming the hosts.
 */
export function localMailRouteWarnings(spec: FleetSpec, fleet: ResolvedFleet): PolicyIssue[] {
  const roles = new Map(fleet.hosts.map((h) => [h.name, h.roles]));
  const senders = new Map<string, { path: PolicyPath; hosts: Set<string> }>();
  for (const host of fleet.hosts) {
    const routes = host.monitoring?.routes ?? [];
    if (!routes.some((r) => r.email !== undefined && r.email.server === undefined)) continue;
    // Lists are replaced whole: the routes are the most specific layer's that has them.
    const group = Object.hasOwn(spec.groups, host.group) ? spec.groups[host.group] : undefined;
    const written: PolicyPath = spec.hosts[host.name]?.monitoring?.routes ? ['hosts', host.name] : group?.monitoring?.routes ? ['groups', host.group] : ['defaults'];
    const runners = new Set((host.monitoring?.checks ?? []).map((c) => c.runsOn).filter((runner) => !(roles.get(runner) ?? []).includes('mail')));
    if (runners.size === 0) continue;
    routes.forEach((route, i) => {
      if (route.email === undefined || route.email.server !== undefined) return;
      const path: PolicyPath = [...written, 'monitoring', 'routes', i, 'email'];
      const key = JSON.stringify(path);
      const known = senders.get(key) ?? { path, hosts: new Set<string>() };
      runners.forEach((runner) => known.hosts.add(runner));
      senders.set(key, known);
    });
  }
  return [...senders.values()].map(({ path, hosts }) => ({
    path,
    message: `an e-mail route without email.server mails through smtp://localhost on the host that runs the check, and ${[...hosts].sort().join(', ')} ${hosts.size === 1 ? 'has' : 'have'} no role "mail": alerts reach nobody unless a mail server runs there besides upkeep; give the route a server (a relay)`,
  }));
}
