// examples/existing-hosts, pointed at real test hosts: bin/plan and bin/apply install the standard
// contract (updates, backups, monitoring) and bin/plan --live sees the result, then drift.
// The tests build on each other in order.

import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import example from '../../examples/existing-hosts/fleet.ts';
import { applyPlan } from './apply-helpers.ts';
import { runCommand } from './run-command.ts';
import { FLEET_HOOK_TIMEOUT_MS, FLEET_TEST_TIMEOUT_MS, fleetAvailable, startFleet, type TestFleet } from './testbed.ts';

const root = join(import.meta.dirname, '..', '..');
const HOSTS = Object.keys(example.hosts).sort();

describe.skipIf(!fleetAvailable('the example fleet tests (test/fleet/example-existing-hosts.test.ts)'))('examples/existing-hosts on real hosts', () => {
  let fleet: TestFleet;
  let work: string;
  let firstPlan: string;

  function plan(args: string[]) {
    return runCommand(join(root, 'bin', 'plan'), [join(work, 'fleet.yaml'), ...args], { env: { ...process.env, NO_COLOR: '1' } });
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'upkeep-example-test-'));
    process.env.ALERT_TOKEN = randomBytes(18).toString('base64');
    fleet = await startFleet(HOSTS);
    // The example as it is, with the test hosts' addresses and host keys in place of its own.
    const spec = structuredClone(example) as any;
    for (const name of HOSTS) Object.assign(spec.hosts[name], { address: fleet.host(name).address, hostKey: fleet.host(name).hostKey });
    writeFileSync(join(work, 'fleet.yaml'), stringify(spec));
    mkdirSync(join(work, 'secrets'));
    writeFileSync(join(work, 'secrets', 'restic-password'), randomBytes(18).toString('base64'), { mode: 0o600 });
  }, FLEET_HOOK_TIMEOUT_MS);
  afterAll(async () => {
    delete process.env.ALERT_TOKEN;
    await fleet?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  }, FLEET_HOOK_TIMEOUT_MS);

  it('installs the units on the first apply and systemctl list-timers shows them on every host', async () => {
    firstPlan = join(work, 'plan-1');
    const planned = await plan(['--out', firstPlan]);
    expect(planned.exitCode, planned.stderr).toBe(2);
    const run = await applyPlan(fleet, firstPlan);
    expect(run.exitCode, run.stderr).toBe(0);
    for (const name of HOSTS) {
      const timers = (await fleet.host(name).ssh('systemctl list-timers --all --no-legend "upkeep-*"')).stdout;
      for (const timer of ['upkeep-security-updates.timer', 'upkeep-routine-updates.timer', 'upkeep-reboot.timer', `upkeep-check-${name}-disk-usage.timer`]) {
        expect(timers, `${name}: ${timer}`).toContain(timer);
      }
      expect(timers.includes('upkeep-backup.timer'), `${name}: backup timer`).toBe(name !== 'backup1');
    }
  }, FLEET_TEST_TIMEOUT_MS);

  it('plans no change against the live hosts right after the apply (exit 0)', async () => {
    const live = await plan(['--out', join(work, 'live-1'), '--live', '--identity', fleet.identityFile]);
    expect(live.stderr).toBe('');
    expect(live.stdout).toMatch(/^0 host\(s\) to change, 3 unchanged/);
    expect(live.exitCode).toBe(0);
  }, FLEET_TEST_TIMEOUT_MS);

  it('shows a file changed behind upkeep\'s back as drift and plans it back (exit 2)', async () => {
    const tamper = await fleet.host('app1').ssh('echo "# edited by hand" >> /etc/systemd/system/upkeep-backup.timer');
    expect(tamper.exitCode).toBe(0);
    const out = join(work, 'live-2');
    const live = await plan(['--out', out, '--live', '--identity', fleet.identityFile]);
    expect(live.exitCode, live.stderr).toBe(2);
    expect(live.stdout).toMatch(/^1 host\(s\) to change, 2 unchanged/);
    const md = (await runCommand('cat', [join(out, 'plan.md')])).stdout;
    expect(md).toContain('## Drift');
    expect(md).toContain('- app1: `/etc/systemd/system/upkeep-backup.timer` (content)');

    const run = await applyPlan(fleet, out);
    expect(run.exitCode, run.stderr).toBe(0);
    expect((await fleet.host('app1').ssh('grep -c "edited by hand" /etc/systemd/system/upkeep-backup.timer')).stdout.trim()).toBe('0');
  }, FLEET_TEST_TIMEOUT_MS);
});
