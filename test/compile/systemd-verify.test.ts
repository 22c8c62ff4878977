import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compileHost } from '../../lib/compile/host.ts';
import { UNIT_DIR } from '../../lib/compile/desired-state.ts';
import { resolvedFleet } from '../fixtures/resolved-fleet.ts';
import { writeRoot } from './unit-root.ts';
import { programsAvailable } from '../programs.ts';

const fleet = resolvedFleet();
const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

describe.skipIf(!programsAvailable('test/compile/systemd-verify.test.ts', ['systemd-analyze']))('compiled units, checked by the real systemd-analyze', () => {
  for (const host of fleet.hosts) {
    it(`every unit of ${host.name} passes systemd-analyze verify without a warning`, () => {
      const state = compileHost(fleet, host);
      const root = writeRoot(state);
      roots.push(root);
      const units = state.files.filter((f) => f.path.startsWith(`${UNIT_DIR}/`)).map((f) => join(root, f.path));
      expect(units.length).toBeGreaterThan(4);
      const run = spawnSync('systemd-analyze', ['verify', `--root=${root}`, ...units], { encoding: 'utf8' });
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
    });
  }

  it('systemd-analyze verify does catch a program that is not installed (so the checks above mean something)', () => {
    const host = fleet.hosts[0];
    const state = compileHost(fleet, host);
    const withoutScripts = { ...state, files: state.files.filter((f) => !f.path.endsWith('/backup.sh')) };
    const root = writeRoot(withoutScripts);
    roots.push(root);
    const run = spawnSync('systemd-analyze', ['verify', `--root=${root}`, join(root, UNIT_DIR, 'upkeep-backup.service')], { encoding: 'utf8' });
    expect(run.stderr).toContain('backup.sh is not executable');
    expect(run.status).not.toBe(0);
  });

  it('every OnCalendar expression is accepted by systemd-analyze calendar', () => {
    const expressions = new Set<string>();
    for (const host of fleet.hosts) {
      for (const file of compileHost(fleet, host).files) {
        for (const m of (file.content ?? '').matchAll(/^OnCalendar=(.*)$/gm)) expressions.add(m[1]);
      }
    }
    expect(expressions.size).toBeGreaterThan(5);
    const run = spawnSync('systemd-analyze', ['calendar', ...expressions], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });
});
