// compile: every host of a resolved fleet to its desired state, plus the infrastructure stack.

import type { ResolvedFleet } from '../policy/resolved.ts';
import type { HostDesiredState } from './desired-state.ts';
import { compileHost } from './host.ts';
import { synthesizeInfra } from './infra.ts';
import { hostGeneration, plannedState, type PlannedState } from './generation.ts';

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

export interface PlannedFleet {
  /** In the order of fleet.hosts. */
  readonly hosts: readonly PlannedState[];
  readonly terraform?: Readonly<Record<string, string>>;
}

/**
 * compileFleet for a planner that writes as it goes: one host at a time, its contents handed to
 * `onContent` and then dropped, so a fleet of 10,000 hosts never holds every host's files at
 * once. `between` runs after each host (a writer's backpressure: it resolves once there is room).
 * Gives the same generations and stack as compileFleet.
 */
export async function compileFleetPlanned(
  fleet: ResolvedFleet,
  onContent: (sha256: string, content: string) => void,
  between: () => Promise<void>,
  options: CompileOptions = {},
): Promise<PlannedFleet> {
  const hosts: PlannedState[] = [];
  for (const host of fleet.hosts) {
    hosts.push(plannedState(compileHost(fleet, host), onContent));
    await between();
  }
  const generations = Object.fromEntries(hosts.map((h) => [h.host, h.generation]));
  const terraform = fleet.hosts.some((h) => h.provision) ? synthesizeInfra(fleet, generations, options) : undefined;
  return { hosts, ...(terraform && { terraform }) };
}
