// Where each host of a plan is and which host key it must present. Existing hosts carry both in
// plan.json; provisioned hosts get them from Terraform outputs after the engine ran. A host whose
// key is unknown is never contacted: trusting a key on first use would defeat the pinning.

import { readFileSync, writeFileSync } from 'node:fs';
import { TERRAFORM_HOSTS_OUTPUT } from '../compile/infra.ts';
import type { PlanDocument } from '../plan/plan-format.ts';

export interface InventoryHost {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  /** "ssh-ed25519 AAAA..." (no comment); absent only when the operator supplies a known_hosts file. */
  readonly hostKey?: string;
}

export type Inventory = { readonly [host: string]: InventoryHost };

export class InventoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InventoryError';
  }
}

export interface InventoryOptions {
  /** Contents of `terraform output -json`, already parsed. */
  readonly terraformOutputs?: unknown;
  /** The operator pins host keys in their own known_hosts file, so keys may be absent here. */
  readonly externalKnownHosts?: boolean;
}

// Addresses and keys end up in ssh command lines and known_hosts lines: accept only their plain forms.
const ADDRESS = /^[A-Za-z0-9][A-Za-z0-9.:-]*$/;
// A key line is "type base64 [comment]", as ssh-keygen writes it and the policy schema accepts; only
// "type base64" reaches known_hosts (a comment there would be read as nothing, but a newline or other
// control character in one would forge a second line).
const HOST_KEY = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com)[ \t]+([A-Za-z0-9+/]+={0,3})(?:[ \t]+[\x20-\x7e]*)?$/;

/** "type base64" of a public key line "type base64 [comment]"; undefined when it is not one. */
export function pinnedHostKey(line: string): string | undefined {
  const match = HOST_KEY.exec(line.trim());
  return match ? `${match[1]} ${match[2]}` : undefined;
}

interface TerraformHost {
  readonly address?: unknown;
  readonly host_key?: unknown;
  readonly port?: unknown;
}

function terraformHosts(outputs: unknown): Record<string, TerraformHost> {
  if (outputs === undefined) return {};
  const output = (outputs as Record<string, { value?: unknown } | undefined>)?.[TERRAFORM_HOSTS_OUTPUT];
  if (output === undefined || typeof output.value !== 'object' || output.value === null) {
    throw new InventoryError(`Terraform outputs have no "${TERRAFORM_HOSTS_OUTPUT}" map of hosts`);
  }
  return output.value as Record<string, TerraformHost>;
}

/** Every host of the plan with its address and key; throws listing every host that lacks them. */
export function buildInventory(plan: PlanDocument, options: InventoryOptions = {}): Inventory {
  const fromTerraform = terraformHosts(options.terraformOutputs);
  const problems: string[] = [];
  const inventory: Record<string, InventoryHost> = {};
  for (const [name, host] of Object.entries(plan.hosts)) {
    const provisioned = fromTerraform[name];
    const address = host.address ?? provisioned?.address;
    const hostKey = host.hostKey ?? provisioned?.host_key;
    const port = provisioned?.port ?? host.port;
    if (typeof address !== 'string' || !ADDRESS.test(address)) {
      problems.push(`${name}: no usable address (${address === undefined ? 'none in plan.json or Terraform outputs' : JSON.stringify(address)})`);
      continue;
    }
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
      problems.push(`${name}: invalid ssh port ${JSON.stringify(port)}`);
      continue;
    }
    if (hostKey === undefined && !options.externalKnownHosts) {
      problems.push(`${name}: no pinned host key (give one in the policy, in Terraform outputs, or pass --known-hosts)`);
      continue;
    }
    const pinned = typeof hostKey === 'string' ? pinnedHostKey(hostKey) : undefined;
    if (hostKey !== undefined && pinned === undefined) {
      problems.push(`${name}: host key is not an ssh public key line ("type base64 [comment]", printable characters only)`);
      continue;
    }
    inventory[name] = { name, address, port, ...(pinned === undefined ? {} : { hostKey: pinned }) };
  }
  if (problems.length > 0) throw new InventoryError(`cannot reach every host of the plan:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  return inventory;
}

/** Reads a `terraform output -json` file. */
export function readTerraformOutputs(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new InventoryError(`cannot read Terraform outputs ${file}: ${(error as Error).message}`);
  }
}

/** known_hosts lines pinning every host's key under the name ssh will look it up by. */
export function knownHostsLines(inventory: Inventory): string {
  return Object.values(inventory)
    .filter((host) => host.hostKey !== undefined)
    .map((host) => {
      const key = pinnedHostKey(host.hostKey as string);
      if (key === undefined || !ADDRESS.test(host.address)) throw new InventoryError(`${host.name}: cannot pin ${JSON.stringify(host.hostKey)} for ${JSON.stringify(host.address)}: not an ssh public key line and a plain address`);
      return `${host.port === 22 ? host.address : `[${host.address}]:${host.port}`} ${key}`;
    })
    .sort()
    .map((line) => `${line}\n`)
    .join('');
}

/** Writes the pinned known_hosts file the transports use with StrictHostKeyChecking=yes. */
export function writeKnownHosts(inventory: Inventory, file: string): void {
  writeFileSync(file, knownHostsLines(inventory), { mode: 0o600 });
}
