// Peer pins: a host that reaches a provisioned host of its fleet (a reboot set member asking a
// peer whether it is ready, a check reading a monitor's heartbeat) cannot learn its address or host
// key from the policy. Its address comes from the Terraform outputs and its key is the one bin/apply
// rotated it to and pinned (lib/hosts/host-key-pins.ts), so this step writes both, from the
// inventory the rollout itself connects with, on every host whose plan lists provisioned peers
// (lib/compile/peer-pins.ts: PROVISIONED_PEERS in, PEER_PIN_DIR out), in one round trip per host
// and only when they differ from what read-state showed. A peer rebuilt with a new address or key
// is pinned again on the next run.
//
// It runs once every host was read and before the first wave: the new generation's programs find
// their peers from their first run, and the health gate that judges them (a heartbeat check)
// counts on it. The pins are host state beside the generations, so writing them early leaves a
// host's generation as it was.

import { parseProvisionedPeers, PEER_PIN_DIR, PROVISIONED_PEERS } from '../compile/peer-pins.ts';
import { readinessSigner } from '../compile/reboot-set.ts';
import type { HostState } from '../hosts/host-agent.ts';
import type { Inventory } from '../hosts/inventory.ts';
import type { PlanDocument } from '../plan/plan-format.ts';
import type { Journal } from './journal.ts';
import { installPinFiles, pinLines } from './pin-files.ts';
import type { Progress } from './progress.ts';
import { firstLine, pMap, type Transport } from '../hosts/transport.ts';

/** What the runtime programs read an address as: an IPv4 or IPv6 literal. */
const ADDRESS = /^[0-9A-Fa-f.:]+$/;

/** A host with provisioned peers, and what it must have pinned for them. */
export interface PeerPin {
  readonly host: string;
  /** The provisioned peers, by name. */
  readonly peers: readonly string[];
  /** The pin files; absent when the inventory has no address or key for a peer (`missing` says which). */
  readonly files?: PeerPinFiles;
  readonly missing?: readonly string[];
}

export interface PeerPinFiles {
  /** "HOST ADDRESS" per provisioned peer. */
  readonly addresses: string;
  /** The reboot set peers' host keys in ssh-keygen's allowed signers format, for readiness signatures only. */
  readonly signers: string;
}

/**
 * The hosts of a plan that reach provisioned peers (their planned PROVISIONED_PEERS), with the
 * files that pin those peers from `inventory`. `plannedFile` reads a planned file's content (the
 * plan directory's copy).
 */
export function peerPins(plan: PlanDocument, plannedFile: (host: string, path: string) => string, inventory?: Inventory): PeerPin[] {
  const pins: PeerPin[] = [];
  for (const host of Object.keys(plan.hosts).sort()) {
    if (!plan.hosts[host]!.files.some((f) => f.path === PROVISIONED_PEERS)) continue;
    const wanted = parseProvisionedPeers(plannedFile(host, PROVISIONED_PEERS));
    const peers = [...wanted.keys()];
    const missing = peers.filter((p) => inventory?.[p] === undefined || (wanted.get(p)!.includes('signer') && inventory[p]!.hostKey === undefined));
    if (missing.length > 0) {
      pins.push({ host, peers, missing });
      continue;
    }
    pins.push({ host, peers, files: peerPinFiles(peers.map((p) => ({ ...inventory![p]!, signer: wanted.get(p)!.includes('signer') }))) });
  }
  return pins;
}

/** The pin files for `peers`, as the rollout's inventory has them; `signer` peers' keys sign readiness answers. */
export function peerPinFiles(peers: readonly { readonly name: string; readonly address: string; readonly hostKey?: string; readonly signer: boolean }[]): PeerPinFiles {
  const addresses: string[] = [];
  const signers: string[] = [];
  for (const peer of peers) {
    if (!ADDRESS.test(peer.address)) throw new Error(`${peer.name}: address ${JSON.stringify(peer.address)} cannot be pinned: not an IP address`);
    addresses.push(`${peer.name} ${peer.address}\n`);
    if (!peer.signer) continue;
    const signer = peer.hostKey === undefined || /[\r\n]/.test(peer.hostKey) ? undefined : readinessSigner(peer.name, peer.hostKey);
    if (signer === undefined) throw new Error(`${peer.name}: host key is not "type base64"`);
    signers.push(`${signer}\n`);
  }
  const header = (what: string) => `# Managed by upkeep (bin/apply): ${what} of the provisioned hosts this host reaches.\n`;
  return { addresses: header('the addresses') + addresses.join(''), signers: header('the host keys that sign reboot readiness') + signers.join('') };
}

export interface PeerPinOptions {
  readonly pins: readonly PeerPin[];
  /** Hosts that answered read-state; the others are pinned on a later run. */
  readonly reachable: ReadonlySet<string>;
  /** What read-state found (pins survive generations: they are host state). */
  readonly states: ReadonlyMap<string, HostState>;
  transport(host: string): Transport;
  readonly journal: Journal;
  readonly progress: Progress;
  /** @default 8 */
  readonly parallel?: number;
}

/** The hosts whose provisioned peers could not be pinned, with why; empty when all are in place. */
export async function pinPeers(options: PeerPinOptions): Promise<Map<string, string>> {
  const { journal, progress, states } = options;
  const problems = new Map<string, string>();
  // An image root (systemState "offline") runs nothing until it boots and is applied again.
  const pins = options.pins.filter((p) => options.reachable.has(p.host) && states.get(p.host)?.systemState !== 'offline');
  await pMap(pins, Math.min(options.parallel ?? 8, Math.max(1, pins.length)), async (pin) => {
    const context = { host: pin.host, step: 'peer-pin' };
    if (pin.files === undefined) {
      const why = `no address and host key to pin for its provisioned peers ${pin.missing!.join(', ')} (with --known-hosts, bin/apply has no key to give)`;
      problems.set(pin.host, why);
      journal.record(context, 'failed', new Date(), why);
      progress(`  ${pin.host}  peer pin: ${why}`, 'fail');
      return;
    }
    const detail = `${pin.peers.join(', ')} pinned`;
    if ((states.get(pin.host)?.peerPin ?? []).join('\n') === pinLines([['addresses', pin.files.addresses], ['signers', pin.files.signers]]).join('\n')) {
      journal.record(context, 'unchanged', new Date(), detail);
      return;
    }
    try {
      await journal.step(context, () => installPinFiles(options.transport(pin.host), PEER_PIN_DIR, [['signers', pin.files!.signers], ['addresses', pin.files!.addresses]], 'pinning its provisioned peers'), () => ({ result: 'changed', detail }));
      progress(`  ${pin.host}  provisioned peers pinned: ${pin.peers.join(', ')}`, 'ok');
    } catch (error) {
      problems.set(pin.host, firstLine(error));
      progress(`  ${pin.host}  peer pin: ${firstLine(error)}`, 'fail');
    }
  });
  return problems;
}
