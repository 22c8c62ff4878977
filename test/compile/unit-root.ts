// Writes compiled host files into a temporary root directory, for tools that read a real tree
// (systemd-analyze verify --root, sh, apt-config).

import { chmodSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { HostDesiredState } from '../../lib/compile/desired-state.ts';

/**
 * A temporary root holding the host's non-secret files, plus the system's own unit files (so that
 * targets such as timers.target resolve) and /usr/bin/systemctl (which ExecStartPost= runs).
 * `systemd-analyze verify --root` resolves unit names and ExecStart= programs inside it.
 */
export function writeRoot(state: HostDesiredState): string {
  const root = mkdtempSync(join(tmpdir(), `upkeep-root-${state.host}-`));
  cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
  mkdirSync(join(root, 'usr/bin'), { recursive: true });
  copyFileSync('/usr/bin/systemctl', join(root, 'usr/bin/systemctl'));
  chmodSync(join(root, 'usr/bin/systemctl'), 0o755);
  for (const file of state.files) {
    if (file.content === undefined) continue;
    const path = join(root, file.path);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, file.content);
    chmodSync(path, parseInt(file.mode, 8));
  }
  return root;
}
