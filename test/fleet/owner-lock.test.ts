import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readOwner, release, tryClaim, writeOwner, type OwnerRecord } from './owner-lock.ts';
import { removeTree } from './remove-tree.ts';

let scratch: string;
beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), 'upkeep-owner-lock-test-'));
});
afterEach(() => removeTree(scratch));

/** A pid that belonged to a process which has ended. */
function deadPid(): number {
  return spawnSync('true').pid!;
}

describe('a claim owned by a process', () => {
  it('is refused to everyone else while its owner lives, and free again once released', () => {
    const claim = join(scratch, 'address-1');
    const stale: OwnerRecord[] = [];
    expect(tryClaim(claim, { pid: process.pid, workDir: '/first' }, (dead) => stale.push(dead))).toBe(true);
    expect(tryClaim(claim, { pid: process.pid, workDir: '/second' }, (dead) => stale.push(dead))).toBe(false);
    expect(readOwner(claim)).toEqual({ pid: process.pid, workDir: '/first' });

    release(claim);
    expect(existsSync(claim)).toBe(false);
    expect(tryClaim(claim, { pid: process.pid }, (dead) => stale.push(dead))).toBe(true);
    expect(stale).toEqual([]);
  });

  it('is taken over from a dead owner after handing over what the dead owner recorded', () => {
    const claim = join(scratch, 'address-2');
    const dead = { pid: deadPid(), workDir: '/tmp/left-behind', nspawnPid: 42 };
    expect(tryClaim(claim, { pid: process.pid }, () => undefined)).toBe(true);
    writeOwner(claim, dead);

    const stale: OwnerRecord[] = [];
    expect(tryClaim(claim, { pid: process.pid, workDir: '/mine' }, (record) => stale.push(record))).toBe(true);
    expect(stale).toEqual([dead]);
    expect(readOwner(claim)).toEqual({ pid: process.pid, workDir: '/mine' });
  });

  it('is not released by a process that does not own it', () => {
    const claim = join(scratch, 'address-3');
    expect(tryClaim(claim, { pid: process.pid }, () => undefined)).toBe(true);
    writeOwner(claim, { pid: 1 });
    release(claim);
    expect(readOwner(claim)).toEqual({ pid: 1 });
  });
});
