import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RUNTIME_SOURCE, tempDir } from './run-script.ts';
import { programsAvailable } from '../programs.ts';

const scripts = readdirSync(RUNTIME_SOURCE).filter((f) => f.endsWith('.sh')).sort();

describe.skipIf(!programsAvailable('test/runtime/shellcheck.test.ts', ['shellcheck']))('runtime programs pass shellcheck as POSIX sh', () => {
  it('finds the programs', () => {
    expect(scripts).toContain('in-window.sh');
  });

  for (const script of scripts) {
    it(`${script} has no shellcheck finding at any severity`, () => {
      const run = spawnSync('shellcheck', ['--shell=sh', '--severity=style', join(RUNTIME_SOURCE, script)], { encoding: 'utf8' });
      expect(run.stdout + run.stderr).toBe('');
      expect(run.status).toBe(0);
    });
  }

  // The scripts that set up and prove the test machine run as root too.
  for (const script of ['test/setup.sh', 'test/fresh-machine.sh', '.ci/run']) {
    it(`${script} has no shellcheck finding at any severity`, () => {
      const run = spawnSync('shellcheck', ['--severity=style', join(import.meta.dirname, '..', '..', script)], { encoding: 'utf8' });
      expect(run.stdout + run.stderr).toBe('');
      expect(run.status).toBe(0);
    });
  }

  it('shellcheck does report a bashism (so a clean result means something)', () => {
    const dir = tempDir({ 'bad.sh': '#!/bin/sh\n[[ -n "$1" ]] && echo $1\n' });
    const run = spawnSync('shellcheck', ['--shell=sh', join(dir, 'bad.sh')], { encoding: 'utf8' });
    expect(run.status).not.toBe(0);
  });
});
