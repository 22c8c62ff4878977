// Plan-time warnings for hardware checks a policy puts on a virtual machine: they are not compiled
// (a cloud server has no SMART data or CPU sensor, so they could only answer UNKNOWN: a permanent
// alert), and the reviewer should know the host's hardware goes unwatched by upkeep.

import type { PolicyIssue } from './errors.ts';
import type { ResolvedFleet } from './resolved.ts';
import { HARDWARE_CHECKS } from './resolve.ts';

/** One warning per virtual host whose policy names hardware checks. */
export function hardwareCheckWarnings(fleet: ResolvedFleet): PolicyIssue[] {
  return fleet.hosts.flatMap((host) => {
    const hardware = (host.monitoring?.skipped ?? []).filter((s) => HARDWARE_CHECKS.has(s.kind));
    if (hardware.length === 0) return [];
    return [{
      path: ['hosts', host.name, 'monitoring', 'checks'],
      message: `${hardware.map((s) => s.name).join(', ')} not compiled: ${host.name} is a virtual machine${host.provision ? ' (a Hetzner Cloud server)' : ''}, with no hardware of its own to check; set machine: "bare-metal" if it is one`,
    }];
  });
}
