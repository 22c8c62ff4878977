// Reboot set pins: a member of a reboot set asks each other member whether it is ready before it
// reboots, at the peer's address, and believes only an answer signed with the peer's host key
// (lib/compile/reboot-set.ts). A provisioned peer has neither in the policy: its address comes
// from the Terraform outputs and its host key is the one bin/apply rotated it to and pinned
// (lib/hosts/host-key-pins.ts). So this step writes both, from the inventory the rollout itself
// connected with, on every member that has provisioned peers (REBOOT_SET_PIN_DIR: addresses and
// signers), in one round trip per member and only when they differ from what read-state showed.
// Until then reboot.sh does not ask such a peer and its reboots carry over; a peer rebuilt with a
// new address or key is pinned again on the next run.
//
// It runs at the end of the rollout, beside the backup key exchange, once every group is through.

import { shellQuote } from '../compile/env-file.ts';
import { CONFIG_DIR } from '../compile/desired-state.ts';
import { readinessSigner, REBOOT_SET_PIN_DIR } from '../compile/reboot-set.ts';
import type { HostState } from '../hosts/host-agent.ts';
import type { Inventory } from '../hosts/inventory.ts';
import type { PlanDocument } from '../plan/plan-format.ts';
import type { Journal } from './journal.ts';
import type { Progress } from './progress.ts';
import { firstLine, lastLines, pMap, type Transport } from '../hosts/transport.ts';

/** Where a member's reboot set settings are (compiled by lib/compile/reboot-set.ts). */
const REBOOT_SET_ENV = `${CONFIG_DIR}/reboot-set.env`;
const SET_LINE = /^UPKEEP_REBOOT_SET='([a-z0-9][a-z0-9-]*)'$/m;
const PEERS_LINE = /^UPKEEP_REBOOT_PEERS='([^']*)'$/m;
/** What reboot.sh reads an address as: an IPv4 or IPv6 literal. */
const ADDRESS = /^[0-9A-Fa-f.:]+$/;

/** A member of a reboot set with provisioned peers, and what it must have pinned for them. */
export interface RebootSetPin {
  readonly member: string;
  readonly set: string;
  /** The provisioned peers, in set order. */
  readonly peers: readonly string[];
  /** The pin files; absent when the inventory has no address or key for a peer (`missing` says which). */
  readonly files?: RebootSetPinFiles;
  readonly missing?: readonly string[];
}

export interface RebootSetPinFiles {
  /** "HOST ADDRESS" per provisioned peer. */
  readonly addresses: string;
  /** The peers' host keys in ssh-keygen's allowed signers format, for readiness signatures only. */
  readonly signers: string;
}

/**
 * The members of a plan's reboot sets that have provisioned peers (an empty address in their
 * planned reboot-set.env), with the files that pin those peers from `inventory`. `plannedFile`
 * reads a planned file's content (the plan directory's copy).
 */
export function rebootSetPins(plan: PlanDocument, plannedFile: (host: string, path: string) => string, inventory?: Inventory): RebootSetPin[] {
  const pins: RebootSetPin[] = [];
  for (const member of Object.keys(plan.hosts).sort()) {
    if (!plan.hosts[member]!.files.some((f) => f.path === REBOOT_SET_ENV)) continue;
    const env = plannedFile(member, REBOOT_SET_ENV);
    const set = SET_LINE.exec(env)?.[1];
    const peers = PEERS_LINE.exec(env)?.[1];
    if (set === undefined || peers === undefined) throw new Error(`${member}: its planned ${REBOOT_SET_ENV} names no reboot set or peers; run bin/plan again`);
    // Entries are "host,address,port,readiness port"; a provisioned peer's address is empty.
    const provisioned = peers.split(' ').filter((p) => p.split(',')[1] === '').map((p) => p.split(',')[0]!);
    if (provisioned.length === 0) continue;
    const missing = provisioned.filter((p) => inventory?.[p]?.hostKey === undefined);
    if (missing.length > 0) {
      pins.push({ member, set, peers: provisioned, missing });
      continue;
    }
    pins.push({ member, set, peers: provisioned, files: rebootSetPinFiles(set, provisioned.map((p) => inventory![p]!)) });
  }
  return pins;
}

/** The pin files for the provisioned `peers` of reboot set `set`, as the rollout's inventory has them. */
export function rebootSetPinFiles(set: string, peers: readonly { readonly name: string; readonly address: string; readonly hostKey?: string }[]): RebootSetPinFiles {
  const addresses: string[] = [];
  const signers: string[] = [];
  for (const peer of peers) {
    if (!ADDRESS.test(peer.address)) throw new Error(`${peer.name}: address ${JSON.stringify(peer.address)} cannot be pinned for reboot set ${set}: not an IP address`);
    const signer = peer.hostKey === undefined ? undefined : readinessSigner(peer.name, peer.hostKey);
    if (signer === undefined || /[\r\n]/.test(peer.hostKey!)) throw new Error(`${peer.name}: host key is not "type base64"`);
    addresses.push(`${peer.name} ${peer.address}\n`);
    signers.push(`${signer}\n`);
  }
  const header = (what: string) => `# Managed by upkeep (bin/apply): ${what} of the provisioned members of reboot set ${set}.\n`;
  return { addresses: header('the addresses') + addresses.join(''), signers: header('the host keys, which sign their readiness,') + signers.join('') };
}

/** The pin as the agent's read-state reports it: "<file> <line>" for each non-empty line. */
function pinLines(files: RebootSetPinFiles): string[] {
  const lines = (name: string, text: string) => text.split('\n').filter((line) => line !== '').map((line) => `${name} ${line}`);
  return [...lines('addresses', files.addresses), ...lines('signers', files.signers)];
}

export interface RebootSetPinOptions {
  readonly pins: readonly RebootSetPin[];
  /** Hosts now on their planned generation; other members are left for a later run. */
  readonly applied: ReadonlySet<string>;
  /** What read-state found before the rollout (pins survive generations: they are host state). */
  readonly states: ReadonlyMap<string, HostState>;
  transport(host: string): Transport;
  readonly journal: Journal;
  readonly progress: Progress;
  /** @default 8 */
  readonly parallel?: number;
}

/** The members whose provisioned peers could not be pinned, with why; empty when all are in place. */
export async function pinRebootSetPeers(options: RebootSetPinOptions): Promise<Map<string, string>> {
  const { journal, progress, states } = options;
  const problems = new Map<string, string>();
  // An image root (systemState "offline") runs no reboots until it boots and is applied again.
  const pins = options.pins.filter((p) => options.applied.has(p.member) && states.get(p.member)?.systemState !== 'offline');
  await pMap(pins, Math.min(options.parallel ?? 8, Math.max(1, pins.length)), async (pin) => {
    const context = { host: pin.member, step: 'reboot-set-pin' };
    if (pin.files === undefined) {
      const why = `no pinned address and host key for its reboot set peers ${pin.missing!.join(', ')} (with --known-hosts, bin/apply has none to give); its reboots carry over until they are pinned`;
      problems.set(pin.member, why);
      journal.record(context, 'failed', new Date(), why);
      progress(`  ${pin.member}  reboot set pin: ${why}`, 'fail');
      return;
    }
    const detail = `${pin.peers.join(', ')} pinned for reboot set ${pin.set}`;
    if ((states.get(pin.member)?.rebootSetPin ?? []).join('\n') === pinLines(pin.files).join('\n')) {
      journal.record(context, 'unchanged', new Date(), detail);
      return;
    }
    try {
      await journal.step(context, () => installPin(options.transport(pin.member), pin.files!), () => ({ result: 'changed', detail }));
      progress(`  ${pin.member}  reboot set ${pin.set}: ${pin.peers.join(', ')} pinned`, 'ok');
    } catch (error) {
      problems.set(pin.member, firstLine(error));
      progress(`  ${pin.member}  reboot set pin: ${firstLine(error)}`, 'fail');
    }
  });
  return problems;
}

/** One round trip on a member: both pin files replaced atomically (signers first: reboot.sh needs both). */
async function installPin(t: Transport, files: RebootSetPinFiles): Promise<void> {
  const dir = REBOOT_SET_PIN_DIR;
  const script = [
    'set -eu',
    'umask 022',
    `mkdir -p ${dir}`,
    `printf '%s' ${shellQuote(files.signers)} >${dir}/signers.new`,
    `printf '%s' ${shellQuote(files.addresses)} >${dir}/addresses.new`,
    `mv -f ${dir}/signers.new ${dir}/signers`,
    `mv -f ${dir}/addresses.new ${dir}/addresses`,
  ].join('\n');
  const result = await t.run(script);
  if (result.exitCode !== 0) throw new Error(`${t.host}: pinning its reboot set peers failed (exit ${result.exitCode}): ${lastLines(result.stderr, 3)}`);
}
