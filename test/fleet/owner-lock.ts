// Cross-process claims on a name (a base image build, a loopback address) owned by a live process.
// A claim is a directory holding owner.json, created atomically by renaming a prepared directory
// into place; a claim whose owner process has died is stale and is taken over, after the caller
// has cleaned up whatever the dead owner left behind.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { removeTree } from './remove-tree.ts';

export interface OwnerRecord {
  readonly pid: number;
  /** Anything the owner wants found again if it dies: work directories, process ids. */
  readonly [key: string]: unknown;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function readOwner(claimDir: string): OwnerRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(claimDir, 'owner.json'), 'utf8')) as OwnerRecord;
  } catch {
    return undefined;
  }
}

/** Updates what a held claim records about its owner (e.g. the process ids it started). */
export function writeOwner(claimDir: string, record: OwnerRecord): void {
  const temporary = join(claimDir, `.owner-${randomBytes(4).toString('hex')}`);
  writeFileSync(temporary, JSON.stringify(record));
  renameSync(temporary, join(claimDir, 'owner.json'));
}

/**
 * Claims claimDir for this process. Returns false when a live process holds it. A claim held by a
 * dead process is handed to onStale (to clean up after it) and then taken over.
 */
export function tryClaim(claimDir: string, record: OwnerRecord, onStale: (dead: OwnerRecord) => void): boolean {
  mkdirSync(dirname(claimDir), { recursive: true });
  for (;;) {
    const prepared = `${claimDir}.new-${process.pid}-${randomBytes(4).toString('hex')}`;
    mkdirSync(prepared);
    writeFileSync(join(prepared, 'owner.json'), JSON.stringify(record));
    try {
      renameSync(prepared, claimDir);
      return true;
    } catch (error) {
      removeTree(prepared);
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
    }
    const owner = readOwner(claimDir);
    // A claim without a readable owner is one being replaced right now: treat it as held.
    if (owner === undefined || isAlive(owner.pid)) return false;
    // Move the stale claim aside first so only one process cleans up after the dead owner.
    const tomb = `${claimDir}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      renameSync(claimDir, tomb);
    } catch {
      continue;
    }
    onStale(owner);
    removeTree(tomb);
  }
}

export function release(claimDir: string): void {
  const owner = readOwner(claimDir);
  if (owner?.pid === process.pid) removeTree(claimDir);
}
