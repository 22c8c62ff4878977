// Alert routes, checked where they are written (defaults, a group or a host), so an error names
// the layer the user must edit: a route is exactly one kind, reminders only where the receiver
// does not repeat by itself, and SMTP credentials go together.

import type { PolicyIssue, PolicyPath } from './errors.ts';
import { policyLayers } from './layering.ts';
import type { FleetSpec } from './model.ts';

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
