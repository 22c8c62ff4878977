// The desired state of one host: every file, unit and package that its resolved policies need.

import type { ResolvedFleet, ResolvedHost } from '../policy/resolved.ts';
import { compileBackupReceiver, compileBackups } from './backups.ts';
import type { HostDesiredState, ManagedFile } from './desired-state.ts';
import type { HostPart } from './host-part.ts';
import { compileMonitoring } from './monitoring.ts';
import { compilePeerPins } from './peer-pins.ts';
import { runtimeScript, withCallees } from './runtime-scripts.ts';
import { compileUpdates } from './updates.ts';

const byPath = (a: ManagedFile, b: ManagedFile) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** Compiles one host of a resolved fleet. Pure and deterministic: files sorted by path, units and packages sorted. */
export function compileHost(fleet: ResolvedFleet, host: ResolvedHost): HostDesiredState {
  const parts: HostPart[] = [
    host.updates && compileUpdates(host, host.updates, fleet.groups.find((g) => g.name === host.group)?.staging === true),
    host.backups && compileBackups(fleet, host, host.backups),
    compileBackupReceiver(fleet, host),
    compileMonitoring(fleet, host),
    compilePeerPins(fleet, host),
  ].filter((p): p is HostPart => p !== undefined);

  const scripts = withCallees(parts.flatMap((p) => p.scripts)).map(runtimeScript);
  const files = new Map<string, ManagedFile>();
  for (const file of [...parts.flatMap((p) => p.files), ...scripts]) {
    const known = files.get(file.path);
    if (known && JSON.stringify(known) !== JSON.stringify(file)) throw new Error(`host ${host.name}: two different files at ${file.path}`);
    files.set(file.path, file);
  }
  return {
    host: host.name,
    files: [...files.values()].sort(byPath),
    units: [...new Set(parts.flatMap((p) => p.units))].sort(),
    packages: [...new Set(parts.flatMap((p) => p.packages))].sort(),
  };
}
