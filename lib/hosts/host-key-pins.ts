// Host keys of provisioned servers after their bootstrap key is rotated away. Terraform generates
// each server's first ssh host key (lib/compile/host-keys.ts) and that key's private half stays
// readable in user_data (served by the cloud's metadata service for the server's life) and in
// Terraform state: it can prove nothing after the first contact. So bin/apply's first connection,
// pinned with that bootstrap key, has the host make a new key (lib/runtime/rotate-host-key.sh),
// and the pins file records bootstrap key -> rotated key per host. From then on only the rotated
// key is pinned; a host that presents the bootstrap key again is refused like any stranger.
//
// The pins file holds public keys only. It belongs with the policy, committed, so a pipeline that
// starts from a clean checkout finds it: without it a rotated host cannot be verified, and upkeep
// fails closed rather than trusting whatever key the host presents.

import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PlanDocument } from '../plan/plan-format.ts';
import { secretBaseDir } from '../plan/secrets.ts';
import type { Inventory, InventoryHost } from './inventory.ts';
import { lastLines, type Transport } from './transport.ts';

/** The pins file's name, in the policy file's directory unless bin/apply --host-keys says otherwise. */
export const HOST_KEY_PINS_FILE = 'upkeep-host-keys.json';
const FORMAT_VERSION = 1;

/** One provisioned server's keys: the one Terraform made, and the one the server made to replace it. */
export interface HostKeyPin {
  /** "ssh-ed25519 AAAA...", as Terraform outputs it. */
  readonly bootstrap: string;
  /** "ssh-ed25519 AAAA...", generated on the host; the only key pinned for it from then on. */
  readonly rotated: string;
}

export interface HostKeyPins {
  readonly file: string;
  /** False when there was no file: nothing is known to be rotated. */
  readonly existed: boolean;
  readonly hosts: Readonly<Record<string, HostKeyPin>>;
}

export class HostKeyPinError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HostKeyPinError';
  }
}

const KEY = /^ssh-ed25519 [A-Za-z0-9+/]+={0,3}$/;

/** "type base64" of a public key line, whatever comment follows. */
export function keyOf(line: string): string {
  return line.trim().split(/\s+/).slice(0, 2).join(' ');
}

/** Where a plan's pins file is by default: beside the policy, where it is committed with it. */
export function defaultPinsFile(plan: PlanDocument, cwd: string = process.cwd()): string {
  return join(secretBaseDir(plan, cwd), HOST_KEY_PINS_FILE);
}

/** Reads the pins file of `fleet`; a missing file is an empty record, a damaged one an error. */
export function readHostKeyPins(file: string, fleet: string): HostKeyPins {
  if (!existsSync(file)) return { file, existed: false, hosts: {} };
  let doc: { format_version?: unknown; fleet?: unknown; hosts?: unknown };
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new HostKeyPinError(`cannot read the pinned host keys ${file}: ${(error as Error).message}`);
  }
  if (doc.format_version !== FORMAT_VERSION) throw new HostKeyPinError(`${file}: unknown format_version ${JSON.stringify(doc.format_version)}`);
  if (doc.fleet !== fleet) throw new HostKeyPinError(`${file} pins the hosts of fleet ${JSON.stringify(doc.fleet)}, not ${JSON.stringify(fleet)}; give this fleet its own file (bin/apply --host-keys FILE)`);
  const hosts: Record<string, HostKeyPin> = {};
  for (const [name, pin] of Object.entries((doc.hosts ?? {}) as Record<string, { bootstrap?: unknown; rotated?: unknown }>)) {
    if (typeof pin?.bootstrap !== 'string' || typeof pin.rotated !== 'string' || !KEY.test(pin.bootstrap) || !KEY.test(pin.rotated)) {
      throw new HostKeyPinError(`${file}: the keys of ${name} are not two ssh-ed25519 public keys`);
    }
    hosts[name] = { bootstrap: pin.bootstrap, rotated: pin.rotated };
  }
  return { file, existed: true, hosts };
}

/** Writes the pins (sorted, so the committed diff shows only what changed), atomically. */
export function writeHostKeyPins(pins: HostKeyPins, fleet: string): void {
  const hosts = Object.fromEntries(Object.keys(pins.hosts).sort().map((name) => [name, pins.hosts[name]]));
  const doc = {
    about: 'ssh host keys that upkeep had provisioned servers generate in place of the bootstrap keys from Terraform. Public keys only: commit this file with the policy; bin/apply cannot verify these hosts without it.',
    format_version: FORMAT_VERSION,
    fleet,
    hosts,
  };
  const temporary = `${pins.file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o644 });
  renameSync(temporary, pins.file);
}

export interface PinnedInventory {
  /** Every host pinned with the key it must present now: rotated keys where the pins record them. */
  readonly inventory: Inventory;
  /** Provisioned hosts still pinned with their bootstrap key: they are to be rotated. */
  readonly bootstrap: readonly InventoryHost[];
}

/**
 * Applies the pins to an inventory. Only hosts whose key came from Terraform outputs (none in the
 * policy) are concerned: a recorded bootstrap key equal to the output pins the rotated key; a new
 * output key (a rebuilt server) or no record leaves the output key pinned, for rotation.
 */
export function pinInventory(plan: PlanDocument, inventory: Inventory, pins: HostKeyPins): PinnedInventory {
  const pinned: Record<string, InventoryHost> = {};
  const bootstrap: InventoryHost[] = [];
  for (const [name, host] of Object.entries(inventory)) {
    const provisioned = plan.hosts[name]?.hostKey === undefined && host.hostKey !== undefined;
    const pin = pins.hosts[name];
    if (provisioned && pin !== undefined && keyOf(pin.bootstrap) === keyOf(host.hostKey as string)) {
      pinned[name] = { ...host, hostKey: pin.rotated };
    } else {
      pinned[name] = host;
      if (provisioned) bootstrap.push(host);
    }
  }
  return { inventory: pinned, bootstrap };
}

const ROTATE_SOURCE = readFileSync(new URL('../runtime/rotate-host-key.sh', import.meta.url), 'utf8');

/** ssh's words for a host that presented a key other than the pinned one. */
export const HOST_KEY_MISMATCH = /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No ED25519 host key is known/;

/**
 * Has the host behind `transport` (connected with `bootstrapKey` pinned) replace that key with one
 * it generates, and reload sshd; resolves with the new public key ("ssh-ed25519 AAAA...").
 */
export async function rotateHostKey(transport: Transport, bootstrapKey: string): Promise<string> {
  const result = await transport.run(ROTATE_SOURCE, `${keyOf(bootstrapKey)}\n`, { timeoutMs: 120_000 });
  const line = result.stdout.split('\n').find((l) => l.startsWith('rotated '));
  const rotated = line === undefined ? undefined : keyOf(line.slice('rotated '.length));
  if (result.exitCode !== 0 || rotated === undefined || !KEY.test(rotated)) {
    const why = result.exitCode === 3 ? 'sshd does not load the bootstrap key from any of its host key files' : `exit ${result.exitCode}`;
    throw new HostKeyPinError(`${transport.host}: host key rotation failed (${why})${result.stderr.trim() ? `:\n${lastLines(result.stderr, 5)}` : ''}`);
  }
  if (rotated === keyOf(bootstrapKey)) throw new HostKeyPinError(`${transport.host}: host key rotation printed the bootstrap key back`);
  return rotated;
}
