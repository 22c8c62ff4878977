// Policy -> Terraform stack. Every host with a `provision` spec becomes a Hetzner Cloud server;
// the stack is synthesized in memory (a temporary outdir, never the project) into the files of
// DIR/terraform/, deterministic and free of absolute paths and secret values.

import type { ResolvedFleet } from '../policy/resolved.ts';

/**
 * The files of DIR/terraform/ (e.g. {"main.tf.json": "..."}), keys sorted, or undefined when no
 * host is provisioned. `hostGenerations` maps a host to a hash of its compiled policy; it becomes a
 * server label so a change of policy is visible in Terraform.
 */
export function synthesizeInfra(fleet: ResolvedFleet, hostGenerations: Record<string, string>): Record<string, string> | undefined {
  void fleet;
  void hostGenerations;
  throw new Error('synthesizeInfra: not implemented yet');
}
