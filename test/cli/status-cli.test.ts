// `upkeep status` as a pipeline calls it, without hosts: a host that cannot be reached makes the
// fleet out of contract (exit 2, so a scheduled job pages), and bad arguments are errors (exit 1).
// The fleet test (test/fleet/status.test.ts) covers reachable hosts.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { programsAvailable } from '../programs.ts';

const root = join(import.meta.dirname, '..', '..');

function upkeep(args: string[], cwd: string) {
  const r = spawnSync(join(root, 'bin', 'upkeep'), args, { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A one-host fleet whose host listens nowhere: 127.0.0.1, port 9 (discard, closed here). */
function planned(): string {
  const dir = mkdtempSync(join(tmpdir(), 'upkeep-status-cli-'));
  writeFileSync(
    join(dir, 'fleet.yaml'),
    [
      'name: nowhere',
      'groups:',
      '  staging: { staging: true }',
      'hosts:',
      '  lone1:',
      '    group: staging',
      '    address: 127.0.0.1',
      '    port: 9',
      '    hostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEx9Tn3bG5Rk2yJ1cQkT1mY4sLq8VnP0aZc7dFhW2uE3',
      '    exempt:',
      '      updates: "A host for a test that never reaches it."',
      '      backups: "A host for a test that never reaches it."',
      '      monitoring: "A host for a test that never reaches it."',
      '',
    ].join('\n'),
  );
  const plan = upkeep(['plan', 'fleet.yaml', '--out', 'plan'], dir);
  expect(plan.code, plan.stderr).toBe(2);
  return dir;
}

describe.skipIf(!programsAvailable('test/cli/status-cli.test.ts', ['ssh']))('upkeep status', () => {
  it('exits 2 and names the host when a host cannot be reached: not reachable is not in contract', () => {
    const dir = planned();
    const r = upkeep(['status', 'plan', '--json'], dir);
    expect(r.code, r.stderr).toBe(2);
    const report = JSON.parse(r.stdout);
    expect(report.summary).toEqual({ hosts: 1, in_contract: 0, out_of_contract: 1, unreachable: 1 });
    expect(report.hosts[0]).toMatchObject({ host: 'lone1', reachable: false, generation: { state: 'out', host: null }, updates: { state: 'exempt', exempt: 'A host for a test that never reaches it.' } });
    expect(report.hosts[0].problems).toEqual([expect.stringMatching(/^unreachable: lone1: ssh failed: .*\(ssh -p 9 root@127\.0\.0\.1 /)]);
    const md = upkeep(['status', 'plan'], dir);
    expect(md.code).toBe(2);
    expect(md.stdout).toContain('**1 of 1 hosts out of contract** (1 unreachable).');
  });

  it('refuses a period that is not a duration and a missing plan directory, exit 1', () => {
    const dir = planned();
    expect(upkeep(['status', 'plan', '--period', 'a week'], dir)).toMatchObject({ code: 1, stderr: 'upkeep status: --period "a week" is not a duration such as 24h or 7d\n' });
    const missing = upkeep(['status'], dir);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('upkeep status: expected one plan directory, got 0 (see upkeep status --help)\n');
  });
});
