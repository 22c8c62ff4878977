// A reboot set member's files, for lib/runtime/reboot.sh: reboot-set.env (its slot of the window,
// the peers that must answer and be ready before it reboots, the checks that make it ready itself),
// the socket serving its own readiness to the peers (serve-reboot-ready.sh), and reboot-set-signers
// (its peers' pinned ssh host keys). Peers are written "host,address,port,readiness port",
// separated by spaces.
//
// A readiness answer is signed with the answering member's ssh host key over a nonce the asking
// member chose (ssh-keygen -Y sign): whoever can pose as a member's address can then neither make
// another member reboot while that member is down nor replay an earlier "ready". A provisioned
// peer has no address nor key in the policy (both exist from its creation and first apply on): its
// entry has an empty address, and bin/apply pins its address and rotated host key on this host
// (lib/compile/peer-pins.ts); until then reboot.sh does not ask it and the reboot carries over. A
// peer with neither a pinned key nor provisioning is trusted on its plain answer, as before.

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

/** The namespace of readiness signatures (ssh-keygen -Y), so that no other signature of a host key passes for one. */
const READINESS_NAMESPACE = 'upkeep-reboot-ready';
/** The peers' host keys that the policy pins, in ssh-keygen's allowed signers format. */
const REBOOT_SET_SIGNERS = `${CONFIG_DIR}/reboot-set-signers`;

const HOST_KEY = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)) ([A-Za-z0-9+/]+={0,3})(?: .*)?$/;
/** The host key bin/apply rotates a provisioned server to (lib/runtime/rotate-host-key.sh makes an ed25519 key). */
const PROVISIONED_HOST_KEY_FILE = '/etc/ssh/ssh_host_ed25519_key';

/** The private key file of sshd that matches a pinned public host key, or undefined for a key type sshd has no host key of. */
function hostKeyFile(publicKey: string): string | undefined {
  const type = HOST_KEY.exec(publicKey)?.[1];
  if (type === undefined) return undefined;
  return `/etc/ssh/ssh_host_${type === 'ssh-ed25519' ? 'ed25519' : type === 'ssh-rsa' ? 'rsa' : 'ecdsa'}_key`;
}

/** One allowed signers line: `host` may sign readiness answers with `publicKey`, and nothing else. Undefined for what is not a public key. */
export function readinessSigner(host: string, publicKey: string): string | undefined {
  const key = HOST_KEY.exec(publicKey);
  return key ? `${checked(host, HOST_NAME, 'reboot set peer')} namespaces="${READINESS_NAMESPACE}" ${key[1]} ${key[2]}` : undefined;
}

/** reboot-set-signers: one line per peer whose host key the policy pins, the only key its readiness may be signed with. */
export function rebootSetSigners(member: ResolvedRebootSetMember): string {
  const lines = member.peers.flatMap((p) => {
    const line = p.provisioned || p.hostKey === undefined ? undefined : readinessSigner(p.host, p.hostKey);
    return line === undefined ? [] : [line];
  });
  return `# Reboot set "${member.set}": the peers' pinned ssh host keys, which sign their readiness (reboot.sh checks).\n${lines.map((l) => `${l}\n`).join('')}`;
}

export function rebootSetEnv(window: ResolvedWindow, member: ResolvedRebootSetMember, readiness: RebootReadiness): string {
  const slot = rebootSlot(window.durationSeconds, member.index, member.count);
  // The peers in set order without this member: peer j is member j before it, j + 1 after it.
  // A provisioned peer's address is empty: reboot.sh reads the one bin/apply pinned (peer-pins.ts).
  const peers = member.peers.map((p, j) => {
    const address = p.provisioned ? '' : checked(p.address, PEER_ADDRESS, 'reboot set peer address');
    return `${checked(p.host, HOST_NAME, 'reboot set peer')},${address},${p.port},${readyPortOf(j < member.index ? j : j + 1)}`;
  });
  return renderEnvFile(`Reboot set "${member.set}": slot ${member.index + 1} of ${member.count}, for reboot.sh and reboot-ready.sh.`, {
    UPKEEP_REBOOT_SET: checked(member.set, HOST_NAME, 'reboot set'),
    UPKEEP_REBOOT_MEMBER: checked(member.host, HOST_NAME, 'reboot set member'),
    UPKEEP_REBOOT_SLOT_START: slot.startSeconds,
    UPKEEP_REBOOT_SLOT_BEGIN_BY: slot.beginBySeconds,
    UPKEEP_REBOOT_PEERS: peers.join(' '),
    UPKEEP_REBOOT_READY_CHECKS: readiness.checks.join(' '),
    UPKEEP_REBOOT_READY_WITHIN: readiness.withinSeconds,
  });
}

/**
 * reboot-set.env, reboot-set-signers and the readiness socket of a member. The socket listens on
 * the host's own address when the policy gives an IP address (hosts sharing a network namespace,
 * such as containers, each answer for themselves), else on every address. Its service gets the
 * host key that the policy pins (a provisioned host: the one bin/apply rotated it to) as a
 * credential to sign with.
 */
export function rebootSetFiles(host: ResolvedHost, window: ResolvedWindow, member: ResolvedRebootSetMember): ManagedFile[] {
  const port = readyPortOf(member.index);
  const listen = host.address !== undefined && IP_ADDRESS.test(host.address) ? `${host.address.includes(':') ? `[${host.address}]` : host.address}:${port}` : String(port);
  const signingKey = host.hostKey !== undefined ? hostKeyFile(host.hostKey) : host.provision ? PROVISIONED_HOST_KEY_FILE : undefined;
  return [
    configFile(`${CONFIG_DIR}/reboot-set.env`, rebootSetEnv(window, member, rebootReadiness(host))),
    configFile(REBOOT_SET_SIGNERS, rebootSetSigners(member)),
    ...socketServedFiles(
      'upkeep-reboot-ready',
      { stream: listen, freeBind: true },
      { socket: `upkeep: whether this host is ready, for the other members of reboot set ${member.set}`, service: 'upkeep: say whether this host is ready for another member of its reboot set to reboot' },
      'serve-reboot-ready.sh',
      signingKey === undefined ? {} : { 'host-key': signingKey },
    ),
  ];
}
