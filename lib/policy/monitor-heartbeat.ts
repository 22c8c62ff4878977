// Watching the watcher: a monitor-heartbeat check must name a monitor that publishes a heartbeat,
// and a fleet whose only monitor has none is warned about, since nothing would notice it dying.

import type { PolicyIssue } from './errors.ts';
import type { ResolvedFleet } from './resolved.ts';

/** Errors: monitor-heartbeat checks whose monitor is not a host with a heartbeat. */
export function monitorHeartbeatIssues(fleet: ResolvedFleet): PolicyIssue[] {
  const byName = new Map(fleet.hosts.map((h) => [h.name, h]));
  const issues: PolicyIssue[] = [];
  for (const host of fleet.hosts) {
    for (const check of host.monitoring?.checks ?? []) {
      if (check.spec.kind !== 'monitor-heartbeat') continue;
      const at = ['hosts', host.name, 'monitoring', 'checks', check.name, 'monitor'];
      const monitor = byName.get(check.spec.monitor);
      if (!monitor) issues.push({ path: at, message: `monitor "${check.spec.monitor}" is not a host of this fleet` });
      else if (!monitor.monitoring?.heartbeat) issues.push({ path: at, message: `host "${monitor.name}" has no monitoring.heartbeat, so there is no liveness to watch` });
      else if (monitor.name === host.name) issues.push({ path: at, message: 'a monitor cannot watch its own heartbeat: the check would die with it' });
    }
  }
  return issues;
}

/** Warnings: the fleet's only monitor has no heartbeat. */
export function monitorHeartbeatWarnings(fleet: ResolvedFleet): PolicyIssue[] {
  const monitors = fleet.hosts.filter((h) => h.roles.includes('monitor'));
  if (monitors.length !== 1 || monitors[0].monitoring?.heartbeat) return [];
  return [
    {
      path: ['hosts', monitors[0].name, 'monitoring'],
      message: "the fleet's only monitor has no heartbeat (monitoring.heartbeat): if it stops, its checks stop alerting and nothing notices",
    },
  ];
}
