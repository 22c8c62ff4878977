// The stack is a pure function of the policy: the same bytes from any working directory, no
// absolute paths, and cdktf's output directory never appears in the working directory.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const SCRIPT = join(ROOT, 'test', 'fixtures', 'synthesize-infra.ts');

/** Synthesizes the fixture in a fresh process whose working and temporary directories are empty. */
function synthesizeIn(): { output: string; cwd: string; tmp: string } {
  const cwd = mkdtempSync(join(tmpdir(), 'upkeep-cwd-'));
  const tmp = mkdtempSync(join(tmpdir(), 'upkeep-tmp-'));
  const output = execFileSync(TSX, [SCRIPT], { cwd, env: { ...process.env, TMPDIR: tmp }, encoding: 'utf8' });
  return { output, cwd, tmp };
}

describe('synthesizing the stack', () => {
  const first = synthesizeIn();
  const second = synthesizeIn();

  it('gives identical bytes from two different working directories', () => {
    expect(first.cwd).not.toBe(second.cwd);
    expect(JSON.parse(first.output)['main.tf.json'].length).toBeGreaterThan(10_000);
    expect(second.output).toBe(first.output);
  });

  it('writes nothing into the working directory (no cdktf.out) and cleans up its temporary directory', () => {
    for (const run of [first, second]) {
      expect(readdirSync(run.cwd)).toEqual([]);
      // tsx keeps its own compile cache there; anything else would be ours.
      expect(readdirSync(run.tmp).filter((name) => !name.startsWith('tsx-'))).toEqual([]);
    }
  });

  it('contains no absolute path of the machine', () => {
    for (const path of [ROOT, first.cwd, first.tmp, tmpdir()]) expect(first.output).not.toContain(path);
    const stack = JSON.parse(JSON.parse(first.output)['main.tf.json']);
    expect(stack.terraform.backend.local.path).toBe('../../state/acme.tfstate');
  });
});
