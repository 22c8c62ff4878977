// compile: every host of a resolved fleet to its desired state, plus the infrastructure stack.

import type { ResolvedFleet } from '../policy/resolved.ts';
import type { HostDesiredState } from './desired-state.ts';
import { compileHost } from './host.ts';
import { synthesizeInfra } from './infra.ts';
import { hostGeneration } from './generation.ts';

export interface CompiledFleet {
  /** In the order of fleet.hosts. */
  readonly hosts: readonly HostDesiredState[];
  /** Files of DIR/terraform/, when the fleet provisions hosts. */
  readonly terraform?: Readonly<Record<string, string>>;
}

export interface CompileOptions {
  /**
   * The project directory as seen from the directory the Terraform files are written to, e.g.
   * "../../.." for DIR=out/plan; the local state path is relative to it. @default "."
   */
  readonly projectDir?: string;
}

export function compileFleet(fleet: ResolvedFleet, options: CompileOptions = {}): CompiledFleet {
  const hosts = fleet.hosts.map((host) => compileHost(fleet, host));
  const generations = Object.fromEntries(hosts.map((h) => [h.host, hostGeneration(h)]));
  const terraform = fleet.hosts.some((h) => h.provision) ? synthesizeInfra(fleet, generations, options) : undefined;
  return { hosts, ...(terraform && { terraform }) };
}
