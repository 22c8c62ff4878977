// What one concern (updates, backups, monitoring) adds to a host; compileHost merges the parts.

import type { ManagedFile } from './desired-state.ts';

export interface HostPart {
  readonly files: readonly ManagedFile[];
  /** Units to enable and start (timers). */
  readonly units: readonly string[];
  readonly packages: readonly string[];
  /** Names of lib/runtime programs the part's units run, e.g. "in-window.sh". */
  readonly scripts: readonly string[];
}

/** A non-secret configuration file owned by root. */
export function configFile(path: string, content: string, mode = '0644'): ManagedFile {
  return { path, mode, owner: 'root:root', content };
}
