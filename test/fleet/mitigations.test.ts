// Mitigations on real hosts, as a customer sees them: a vulnerable service ("vulnd", a tiny .deb
// built here) is stopped and its feature switched off while no fix exists, staging first through
// the rollout with the health gate verifying it; a mitigation that does not take on staging never
// reaches production; the fixed version (installed from a local .deb) reverts its mitigation;
// removing the mitigations from the policy reverts the rest. bin/plan and bin/apply run for real.
// The tests build on each other in order.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { applyPlan, entries } from './apply-helpers.ts';
import { runCommand } from './run-command.ts';
import { FLEET_HOOK_TIMEOUT_MS, FLEET_TEST_TIMEOUT_MS, fleetAvailable, startFleet, type TestFleet } from './testbed.ts';
import { buildTinyDeb, installDeb } from './tiny-deb.ts';

const root = join(import.meta.dirname, '..', '..');
const FEATURE_DIR = '/etc/vulnd/conf.d';
const FEATURE_OFF = `${FEATURE_DIR}/upkeep-no-feature.conf`;

function vulnd(version: string) {
  return buildTinyDeb({
    name: 'vulnd',
    version,
    files: {
      '/usr/sbin/vulnd': '#!/bin/sh\nexec sleep infinity\n',
      '/lib/systemd/system/vulnd.service': '[Unit]\nDescription=a vulnerable test daemon\n\n[Service]\nExecStart=/usr/sbin/vulnd\n\n[Install]\nWantedBy=multi-user.target\n',
      [`${FEATURE_DIR}/README`]: 'vulnd reads its settings from this directory\n',
    },
    // A first install enables and starts the daemon; an upgrade leaves its state alone.
    scripts: { postinst: 'systemctl daemon-reload\nif [ "$1" = configure ] && [ -z "$2" ]; then systemctl enable --now vulnd.service; fi' },
  });
}

const MITIGATIONS = [
  { id: 'CVE-2026-0001', package: 'vulnd', fixedIn: '1.1', action: { stopUnit: 'vulnd.service' } },
  { id: 'CVE-2026-0002', package: 'vulnd', action: { dropIn: { path: FEATURE_OFF, content: 'feature = off\n' } } },
];

describe.skipIf(!fleetAvailable('the mitigation tests (test/fleet/mitigations.test.ts)'))('mitigations on real hosts', () => {
  let fleet: TestFleet;
  let work: string;
  let fixed: string;
  let plans = 0;

  function policy(mitigations: readonly object[]) {
    const exempt = { backups: 'A test host with nothing worth keeping.', monitoring: 'A test host; the health gate runs its checks.' };
    const host = (name: string, group: string) => ({ group, address: fleet.host(name).address, hostKey: fleet.host(name).hostKey, exempt });
    return {
      name: 'mitigations',
      defaults: { updates: { window: { every: 'week', days: ['sun'], start: '02:00', duration: '2h' }, reboot: 'never', mitigations } },
      groups: {
        staging: { staging: true, updates: { window: { every: 'week', days: ['sat'], start: '02:00', duration: '2h' } } },
        production: { after: ['staging'] },
      },
      hosts: { stage1: host('stage1', 'staging'), prod1: host('prod1', 'production') },
    };
  }

  /** bin/plan for the policy with `mitigations` (against the plan the hosts are on), then bin/apply. */
  async function roll(mitigations: readonly object[], base?: string) {
    plans += 1;
    writeFileSync(join(work, 'fleet.yaml'), stringify(policy(mitigations)));
    const out = join(work, `plan-${plans}`);
    const planned = await runCommand(join(root, 'bin', 'plan'), [join(work, 'fleet.yaml'), '--out', out, ...(base ? ['--base', base] : [])], { env: { ...process.env, NO_COLOR: '1' } });
    expect(planned.exitCode, planned.stderr).toBe(2);
    return applyPlan(fleet, out);
  }

  const sh = async (host: string, command: string) => (await fleet.host(host).ssh(command)).stdout.trim();
  const daemon = (host: string) => sh(host, 'systemctl is-active vulnd.service');
  const featureOff = (host: string) => sh(host, `cat ${FEATURE_OFF} 2>/dev/null || echo absent`);

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'upkeep-mitigations-test-'));
    fleet = await startFleet(['stage1', 'prod1']);
    const vulnerable = await vulnd('1.0');
    fixed = await vulnd('1.1');
    await Promise.all(['stage1', 'prod1'].map((h) => installDeb(fleet.host(h), vulnerable)));
  }, FLEET_HOOK_TIMEOUT_MS);
  afterAll(async () => {
    await fleet?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  }, FLEET_HOOK_TIMEOUT_MS);

  it('GIVEN the daemon runs everywhere, WHEN a mitigation cannot take on staging, THEN the health gate stops the rollout and production is untouched', async () => {
    expect(await daemon('stage1')).toBe('active');
    expect(await daemon('prod1')).toBe('active');
    // Any user could plant a symlink in a world-writable directory: mitigations.sh refuses to write there.
    expect((await fleet.host('stage1').ssh(`chmod 0777 ${FEATURE_DIR}`)).exitCode).toBe(0);

    const run = await roll(MITIGATIONS);
    expect(run.exitCode, run.stderr).not.toBe(0);
    const gate = entries(run, 'stage1', 'health-gate')[0];
    expect(gate?.result).toBe('failed');
    expect(gate?.detail).toContain('check upkeep-check-mitigations.service');
    expect(entries(run, 'prod1', 'apply')).toEqual([]);
    expect(await daemon('prod1')).toBe('active');
    expect(await featureOff('prod1')).toBe('absent');
    expect(await sh('prod1', 'test -e /etc/upkeep/mitigations.list && echo present || echo absent')).toBe('absent');
  }, FLEET_TEST_TIMEOUT_MS);

  it('WHEN the mitigations can take, THEN staging and then production stop the daemon and switch the feature off, each verified by its gate', async () => {
    expect((await fleet.host('stage1').ssh(`chmod 0755 ${FEATURE_DIR}`)).exitCode).toBe(0);
    const run = await roll(MITIGATIONS);
    expect(run.exitCode, run.stderr).toBe(0);
    for (const host of ['stage1', 'prod1']) {
      expect(entries(run, host, 'health-gate').map((e) => e.result), host).toEqual(['ok']);
      expect(await daemon(host), host).toBe('inactive');
      expect(await featureOff(host), host).toBe('feature = off');
    }
    // Staging's gate passed before production was touched.
    const stagingGate = entries(run, 'stage1', 'health-gate')[0]!;
    const productionApply = entries(run, 'prod1', 'apply')[0]!;
    expect(Date.parse(productionApply.started_at)).toBeGreaterThanOrEqual(Date.parse(stagingGate.started_at) + stagingGate.duration_ms);
  }, FLEET_TEST_TIMEOUT_MS);

  it('WHEN the fixed version is installed on production, THEN its mitigation is reverted there (and only there), the one without a fix stays', async () => {
    await installDeb(fleet.host('prod1'), fixed);
    expect(await sh('prod1', "dpkg-query -W -f '${Version}' vulnd")).toBe('1.1');
    // What the update runs do after installing (ExecStartPost=) and the timer does every check interval.
    const run = await fleet.host('prod1').ssh('systemctl start upkeep-mitigations.service');
    expect(run.exitCode, run.stderr).toBe(0);
    expect(await sh('prod1', 'ls /var/lib/upkeep/mitigations')).toBe('CVE-2026-0002');
    expect(await daemon('prod1')).toBe('active');
    expect(await featureOff('prod1')).toBe('feature = off');
    expect((await fleet.host('prod1').ssh('systemctl start upkeep-check-mitigations.service')).exitCode).toBe(0);
    expect(await daemon('stage1')).toBe('inactive');
  }, FLEET_TEST_TIMEOUT_MS);

  it('WHEN the mitigations are removed from the policy, THEN the rollout reverts them: the daemon runs again and the feature is back on', async () => {
    // The hosts are on the second plan, the first that went through.
    const run = await roll([], join(work, 'plan-2'));
    expect(run.exitCode, run.stderr).toBe(0);
    for (const host of ['stage1', 'prod1']) {
      expect(entries(run, host, 'health-gate').map((e) => e.result), host).toEqual(['ok']);
      expect(await daemon(host), host).toBe('active');
      expect(await featureOff(host), host).toBe('absent');
      expect(await sh(host, 'ls -A /var/lib/upkeep/mitigations'), host).toBe('');
    }
  }, FLEET_TEST_TIMEOUT_MS);
});
