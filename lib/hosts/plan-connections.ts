// Connections to the hosts of a plan, for reading them (`plan --live`, `upkeep status`), pinned as
// bin/apply pins them: keys from the policy and the Terraform outputs, and upkeep-host-keys.json
// beside the policy (a provisioned host that bin/apply rotated presents only its rotated key),
// unless the caller brings its own known_hosts file.

import type { PlanDocument } from '../plan/plan-format.ts';
import { Connections, type ConnectionOptions } from './connections.ts';
import { defaultPinsFile, pinInventory, readHostKeyPins } from './host-key-pins.ts';
import { buildInventory, readTerraformOutputs } from './inventory.ts';

export interface PlanConnectionOptions extends ConnectionOptions {
  /** A Terraform outputs JSON file giving provisioned hosts' addresses and keys. */
  readonly terraformOutputs?: string;
}

export function planConnections(plan: PlanDocument, options: PlanConnectionOptions): Connections {
  const built = buildInventory(plan, {
    ...(options.terraformOutputs && { terraformOutputs: readTerraformOutputs(options.terraformOutputs) }),
    externalKnownHosts: options.knownHosts !== undefined,
  });
  const inventory = options.knownHosts !== undefined ? built : pinInventory(plan, built, readHostKeyPins(defaultPinsFile(plan), plan.fleet)).inventory;
  return new Connections(inventory, options);
}
