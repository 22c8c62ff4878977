// load -> resolve -> validate in one call: the fleet a compiler may use, or one PolicyError with
// every problem found.

import { PolicyError, type PolicySource } from './errors.ts';
import { checkFleetShape } from './load.ts';
import type { FleetSpec } from './model.ts';
import type { ResolvedFleet } from './resolved.ts';
import { resolveFleet } from './resolve.ts';
import { validateFleet } from './validate.ts';

/** The resolved fleet, or a PolicyError naming every problem (with file and line when known). */
export function prepareFleet(spec: FleetSpec, source?: PolicySource): ResolvedFleet {
  // Shape first: the later stages may assume well-typed input.
  checkFleetShape(spec, source);
  const { fleet, issues } = resolveFleet(spec);
  const all = [...issues, ...validateFleet(spec, fleet)];
  if (all.length > 0) throw new PolicyError(all, source);
  return fleet;
}
