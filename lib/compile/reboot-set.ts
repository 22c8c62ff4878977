// A reboot set member's files, for lib/runtime/reboot.sh: reboot-set.env (its slot of the window,
// the peers that must answer and be ready before it reboots, the checks that make it ready itself)
// and the socket serving its own readiness to the peers (serve-reboot-ready.sh). Peers are written
// "host,address,port,readiness port", separated by spaces.

import type { ResolvedHost, ResolvedRebootSetMember, ResolvedWindow } from '../policy/resolved.ts';
import { rebootSlot } from '../policy/reboot-slot.ts';
import { CONFIG_DIR, type ManagedFile } from './desired-state.ts';
import { renderEnvFile } from './env-file.ts';
import { configFile } from './host-part.ts';
import { checked } from './host-word.ts';
import { checkUnitName } from './monitoring.ts';
import { socketServedFiles } from './systemd.ts';

/** A host name, an IPv4 or an IPv6 address: nothing a shell or bash's /dev/tcp would read otherwise. */
const PEER_ADDRESS = /^[A-Za-z0-9][A-Za-z0-9.:-]*$/;
const HOST_NAME = /^[a-z0-9][a-z0-9-]*$/;
const IP_ADDRESS = /^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*)$/;

/**
 * TCP port on which the first member of a reboot set says whether it is ready (beside the
 * heartbeat's 9469); each next member uses the next port. A port per member rather than one for
 * all: hosts that share an address space (containers on one machine, as in the test fleets) would
 * otherwise fight over it when their addresses are not known at compile time (provisioned hosts).
 */
export const REBOOT_READY_PORT = 9470;

/** The readiness port of member `index` of a set. */
export const readyPortOf = (index: number): number => REBOOT_READY_PORT + index;

/** What makes a member ready after a boot: its own checks, and how long their first runs may take. */
export interface RebootReadiness {
  /** Check ids (the run-check state files) that must pass since the boot. */
  readonly checks: readonly string[];
  /** Seconds after a boot by which the member should be ready; later it is an incident. */
  readonly withinSeconds: number;
}

/**
 * The checks that decide whether `host` is ready: its own checks that run on it (their state is
 * on it), but the reboot-required check, which reports readiness itself. Every check timer first
 * fires a minute after boot (lib/compile/monitoring.ts); the bound gives each check two runs and
 * a minute more for a slow probe, so one failed first run (a service still starting) is no incident.
 */
export function rebootReadiness(host: ResolvedHost): RebootReadiness {
  const own = (host.monitoring?.checks ?? []).filter((c) => c.runsOn === host.name && c.spec.kind !== 'reboot-required');
  const longest = Math.max(0, ...own.map((c) => c.intervalSeconds));
  return { checks: own.map((c) => checkUnitName(c).slice('upkeep-check-'.length)).sort(), withinSeconds: 120 + 2 * longest };
}

export function rebootSetEnv(window: ResolvedWindow, member: ResolvedRebootSetMember, readiness: RebootReadiness): string {
  const slot = rebootSlot(window.durationSeconds, member.index, member.count);
  // The peers in set order without this member: peer j is member j before it, j + 1 after it.
  const peers = member.peers.map((p, j) => `${checked(p.host, HOST_NAME, 'reboot set peer')},${checked(p.address, PEER_ADDRESS, 'reboot set peer address')},${p.port},${readyPortOf(j < member.index ? j : j + 1)}`);
  return renderEnvFile(`Reboot set "${member.set}": slot ${member.index + 1} of ${member.count}, for reboot.sh and reboot-ready.sh.`, {
    UPKEEP_REBOOT_SET: checked(member.set, HOST_NAME, 'reboot set'),
    UPKEEP_REBOOT_SLOT_START: slot.startSeconds,
    UPKEEP_REBOOT_SLOT_BEGIN_BY: slot.beginBySeconds,
    UPKEEP_REBOOT_PEERS: peers.join(' '),
    UPKEEP_REBOOT_READY_CHECKS: readiness.checks.join(' '),
    UPKEEP_REBOOT_READY_WITHIN: readiness.withinSeconds,
  });
}

/**
 * reboot-set.env and the readiness socket of a member. The socket listens on the host's own
 * address when the policy gives an IP address (hosts sharing a network namespace, such as
 * containers, each answer for themselves), else on every address.
 */
export function rebootSetFiles(host: ResolvedHost, window: ResolvedWindow, member: ResolvedRebootSetMember): ManagedFile[] {
  const port = readyPortOf(member.index);
  const listen = host.address !== undefined && IP_ADDRESS.test(host.address) ? `${host.address.includes(':') ? `[${host.address}]` : host.address}:${port}` : String(port);
  return [
    configFile(`${CONFIG_DIR}/reboot-set.env`, rebootSetEnv(window, member, rebootReadiness(host))),
    ...socketServedFiles(
      'upkeep-reboot-ready',
      { stream: listen, freeBind: true },
      { socket: `upkeep: whether this host is ready, for the other members of reboot set ${member.set}`, service: 'upkeep: say whether this host is ready for another member of its reboot set to reboot' },
      'serve-reboot-ready.sh',
    ),
  ];
}
