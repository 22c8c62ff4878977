// Removes a directory tree that a killed debootstrap or container may have left with mounts
// inside it (proc, sys, an overlay): unmount first, and never cross into another file system, so
// a leftover bind mount can never lead the removal outside the tree.
import { readFileSync, rmSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

function mountPointsUnder(root: string): string[] {
  const prefix = resolve(root);
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1])
    .filter((mountPoint): mountPoint is string => mountPoint !== undefined)
    // /proc/self/mounts escapes spaces and other odd characters as octal.
    .map((mountPoint) => mountPoint.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))))
    .filter((mountPoint) => mountPoint === prefix || mountPoint.startsWith(`${prefix}/`));
}

export function removeTree(root: string): void {
  if (!existsSync(root)) return;
  // Deepest first, so nested mounts come off before their parents.
  for (const mountPoint of mountPointsUnder(root).sort((a, b) => b.length - a.length)) {
    spawnSync('umount', ['--lazy', mountPoint], { stdio: 'ignore' });
  }
  const remaining = mountPointsUnder(root);
  if (remaining.length > 0) throw new Error(`cannot remove ${root}: still mounted: ${remaining.join(', ')}`);
  rmSync(root, { recursive: true, force: true });
}
