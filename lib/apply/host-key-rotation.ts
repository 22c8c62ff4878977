// bin/apply's step between the engine and the rollout: provisioned servers trade the host key
// Terraform made (readable in user_data and state, so it proves nothing for long) for one they
// generate themselves, over a connection that verified the bootstrap key, and the pins file
// records the new key (lib/hosts/host-key-pins.ts). Each rotated host is then reached over a brand
// new connection pinned with the new key before the rollout starts, so a pin that does not work is
// found here, not half way through a wave.

import { createHash } from 'node:crypto';
import { HOST_KEY_MISMATCH, HostKeyPinError, keyOf, pinInventory, readHostKeyPins, rotateHostKey, writeHostKeyPins, type HostKeyPin } from '../hosts/host-key-pins.ts';
import type { Inventory, InventoryHost } from '../hosts/inventory.ts';
import { firstLine, pMap, TransportError, type Transport } from '../hosts/transport.ts';
import type { PlanDocument } from '../plan/plan-format.ts';
import type { Journal } from './journal.ts';
import type { Progress } from './progress.ts';

/** ssh connections to the hosts of an inventory, each pinned with its inventory key (a Connections). */
export interface PinnedConnections {
  connect(host: string): Transport;
  close(): Promise<void>;
}

export interface HostKeyRotationOptions {
  readonly plan: PlanDocument;
  /** buildInventory's answer: provisioned hosts carry their bootstrap key from Terraform outputs. */
  readonly inventory: Inventory;
  /** The pins file (defaultPinsFile(plan) unless the operator chose another). */
  readonly pinsFile: string;
  /** Opens connections pinned with the keys of `inventory`. */
  readonly connect: (inventory: Inventory) => PinnedConnections;
  readonly journal: Journal;
  readonly progress: Progress;
  /** @default 8 */
  readonly parallel?: number;
}

/** "SHA256:..." as ssh-keygen -l shows a key. */
export function fingerprint(key: string): string {
  const blob = Buffer.from(keyOf(key).split(' ')[1] ?? '', 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * The inventory the rollout connects with: provisioned hosts pinned with their rotated keys,
 * rotating those still on their bootstrap key first. Throws (after recording every rotation that
 * succeeded) when a host cannot be rotated or verified; a host that presents an unknown key is
 * never trusted, and the error says which file to restore.
 */
export async function pinProvisionedHostKeys(options: HostKeyRotationOptions): Promise<Inventory> {
  const { plan, journal, progress } = options;
  const pins = readHostKeyPins(options.pinsFile, plan.fleet);
  const { inventory, bootstrap } = pinInventory(plan, options.inventory, pins);
  if (bootstrap.length === 0) return inventory;

  const recorded: Record<string, HostKeyPin> = { ...pins.hosts };
  const rotated = new Map<string, InventoryHost>();
  progress(`rotating the bootstrap host key of ${bootstrap.map((h) => h.name).join(', ')}`, 'heading');
  const viaBootstrap = options.connect(Object.fromEntries(bootstrap.map((h) => [h.name, h])));
  const problems: string[] = [];
  try {
    await pMap(bootstrap, Math.min(options.parallel ?? 8, bootstrap.length), async (host) => {
      try {
        const key = await journal.step({ host: host.name, step: 'host-key-rotate' }, () => rotate(host), (k) => ({ result: 'changed', detail: `${fingerprint(host.hostKey as string)} -> ${fingerprint(k)}` }));
        // Recorded at once: the host presents only the new key now, whatever happens next.
        recorded[host.name] = { bootstrap: keyOf(host.hostKey as string), rotated: key };
        writeHostKeyPins({ ...pins, hosts: recorded }, plan.fleet);
        rotated.set(host.name, { ...host, hostKey: key });
        progress(`  ${host.name}  host key rotated: ${fingerprint(key)}`, 'ok');
      } catch (error) {
        problems.push((error as Error).message);
        progress(`  ${host.name}  host key rotation FAILED: ${firstLine(error)}`, 'fail');
      }
    });
  } finally {
    await viaBootstrap.close();
    if (rotated.size > 0) {
      progress(`pinned host keys written to ${pins.file}: commit it with the policy (bin/apply cannot verify ${[...rotated.keys()].join(', ')} without it)`, 'warn');
    }
  }

  // A new connection pinned with nothing but each new key: the pin works before any host relies on it.
  if (rotated.size > 0) {
    const viaRotated = options.connect(Object.fromEntries(rotated));
    try {
      await pMap([...rotated.keys()], Math.min(options.parallel ?? 8, rotated.size), (name) =>
        journal
          .step({ host: name, step: 'host-key-verify' }, async () => {
            const result = await viaRotated.connect(name).run('true');
            if (result.exitCode !== 0) throw new Error(`${name}: a login pinned with the rotated key ran \`true\` with exit ${result.exitCode}`);
          })
          .catch((error: unknown) => {
            problems.push(`${name}: the rotated host key is recorded but a new connection pinned with it failed: ${(error as Error).message}`);
          }),
      );
    } finally {
      await viaRotated.close();
    }
  }
  if (problems.length > 0) throw new HostKeyPinError(`the host keys of provisioned hosts are not all in place; the rollout did not start:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  return { ...inventory, ...Object.fromEntries(rotated) };

  async function rotate(host: InventoryHost): Promise<string> {
    const transport = viaBootstrap.connect(host.name);
    try {
      return await rotateHostKey(transport, host.hostKey as string);
    } catch (error) {
      if (error instanceof TransportError && HOST_KEY_MISMATCH.test(error.stderr)) throw new HostKeyPinError(refusedMessage(host, pins.hosts[host.name], pins.existed, pins.file));
      throw error;
    }
  }
}

/** Why a host presenting an unknown key is refused, and what to restore. */
function refusedMessage(host: InventoryHost, pin: HostKeyPin | undefined, existed: boolean, file: string): string {
  const head = `${host.name} presents neither its bootstrap host key from Terraform (${fingerprint(host.hostKey as string)}) nor a rotated key pinned for it, and upkeep never trusts a key on first use`;
  if (!existed) return `${head}: ${file} is missing. If an earlier bin/apply rotated this host's key, restore that file (committed with the policy) and run again; otherwise the server is not the one Terraform created.`;
  if (pin === undefined) return `${head}: ${file} has no entry for it. Restore the version of that file that recorded its rotation, or rebuild the server.`;
  return `${head}: ${file} records a rotation for an earlier server of that name (bootstrap ${fingerprint(pin.bootstrap)}). Restore the version of that file that recorded this server's rotation, or rebuild the server.`;
}
