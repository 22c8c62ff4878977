// bin/apply on a real fleet: stage1 (staging) then web1..web3 (production, batches of 2).
// The tests build on each other in order, like successive merges on one fleet.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlanDocument } from '../../lib/plan/plan-format.ts';
import { CHECK_UNIT, CONFIG_FILE, FAIL_CHECK_FILE, writeFixturePlan, type FixtureOptions } from '../fixtures/plan-dir.ts';
import { addressesOf, applyPlan, entries, snapshotHost } from './apply-helpers.ts';
import { FLEET_HOOK_TIMEOUT_MS, FLEET_TEST_TIMEOUT_MS, fleetAvailable, startFleet, type TestFleet } from './testbed.ts';

const HOSTS = ['stage1', 'web1', 'web2', 'web3'];

describe.skipIf(!fleetAvailable('the applier rollout tests (test/fleet/apply-rollout.test.ts)'))('bin/apply on a real fleet', () => {
  let fleet: TestFleet;
  let work: string;
  let current: PlanDocument | undefined;
  let planCount = 0;

  /** Plans the fixture against the last applied plan, like bin/plan --base. */
  async function plan(options: Omit<FixtureOptions, 'hosts' | 'base'> = {}): Promise<{ dir: string; plan: PlanDocument }> {
    planCount += 1;
    const dir = join(work, `plan-${planCount}`);
    const document = await writeFixturePlan(dir, { hosts: addressesOf(fleet), ...(current && { base: current }), ...options });
    return { dir, plan: document };
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'upkeep-apply-test-'));
    fleet = await startFleet(HOSTS);
  }, FLEET_HOOK_TIMEOUT_MS);
  afterAll(async () => {
    await fleet?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  }, FLEET_HOOK_TIMEOUT_MS);

  it('installs the units on the first apply, and systemctl list-timers shows them on every host', async () => {
    const first = await plan();
    const run = await applyPlan(fleet, first.dir);
    expect(run.exitCode, run.stderr).toBe(0);
    current = first.plan;
    for (const name of HOSTS) {
      const timers = await fleet.host(name).ssh('systemctl list-timers --all --no-legend upkeep-fixture-*');
      expect(timers.stdout).toContain('upkeep-fixture-01.timer');
      expect(timers.stdout).toContain('upkeep-fixture-02.timer');
      expect(entries(run, name, 'apply')[0]?.result).toBe('changed');
      expect(entries(run, name, 'health-gate')[0]?.result).toBe('ok');
    }
    expect(run.journal.outcome).toBe('ok');
  }, FLEET_TEST_TIMEOUT_MS);

  it('changes nothing on a second apply, restarts nothing, and reads each host in one round trip', async () => {
    const again = await plan();
    const before = await Promise.all(HOSTS.map((h) => snapshotHost(fleet.host(h), { mtimes: true })));
    const timerStarts = await fleet.host('web1').ssh('systemctl show -p ActiveEnterTimestampMonotonic upkeep-fixture-01.timer');
    const run = await applyPlan(fleet, again.dir);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(await Promise.all(HOSTS.map((h) => snapshotHost(fleet.host(h), { mtimes: true })))).toEqual(before);
    expect((await fleet.host('web1').ssh('systemctl show -p ActiveEnterTimestampMonotonic upkeep-fixture-01.timer')).stdout).toBe(timerStarts.stdout);
    for (const name of HOSTS) expect(entries(run, name, 'apply').map((e) => e.result)).toEqual(['unchanged']);
    expect(run.journal.entries.filter((e) => e.step === 'health-gate' || e.step === 'rollback')).toEqual([]);
    // One round trip per host; the lock host adds taking and releasing the fleet lock.
    expect(run.roundTrips).toEqual({ stage1: 3, web1: 1, web2: 1, web3: 1 });
    current = again.plan;
  }, FLEET_TEST_TIMEOUT_MS);

  it('updates only the file a policy change touches, only on the host it concerns', async () => {
    const change = await plan({ config: (host) => (host === 'web2' ? 'version=2' : 'version=1') });
    const before = Object.fromEntries(await Promise.all(HOSTS.map(async (h) => [h, await snapshotHost(fleet.host(h), { mtimes: true })])));
    const run = await applyPlan(fleet, change.dir);
    expect(run.exitCode, run.stderr).toBe(0);
    const after = Object.fromEntries(await Promise.all(HOSTS.map(async (h) => [h, await snapshotHost(fleet.host(h), { mtimes: true })])));
    for (const h of ['stage1', 'web1', 'web3']) expect(after[h]).toBe(before[h]);
    const changedLines = (after.web2 as string).split('\n').filter((line) => !(before.web2 as string).split('\n').includes(line));
    expect(changedLines.map((l) => l.split(' ').at(-1))).toEqual([CONFIG_FILE.slice(1)]);
    expect((await fleet.host('web2').ssh(`cat ${CONFIG_FILE}`)).stdout).toBe('version=2\n');
    expect(entries(run, 'web2', 'apply')[0]?.result).toBe('changed');
    for (const h of ['stage1', 'web1', 'web3']) expect(entries(run, h, 'apply')[0]?.result).toBe('unchanged');
    current = change.plan;
  }, FLEET_TEST_TIMEOUT_MS);

  it('stops at a failing check on staging: staging is back on its previous generation byte for byte, production untouched', async () => {
    const change = await plan({ config: () => 'version=3' });
    const before = await Promise.all(HOSTS.map((h) => snapshotHost(fleet.host(h))));
    const productionBefore = await Promise.all(HOSTS.slice(1).map((h) => snapshotHost(fleet.host(h), { mtimes: true })));
    await fleet.host('stage1').ssh(`touch ${FAIL_CHECK_FILE}`);
    try {
      const run = await applyPlan(fleet, change.dir);
      expect(run.exitCode, run.stderr).toBe(3);
      expect(entries(run, 'stage1', 'health-gate')[0]).toMatchObject({ result: 'failed' });
      expect(entries(run, 'stage1', 'health-gate')[0]?.detail).toContain(CHECK_UNIT);
      expect(entries(run, 'stage1', 'rollback')[0]).toMatchObject({ result: 'rolled-back' });
      expect(await snapshotHost(fleet.host('stage1'))).toBe(before[0]);
      expect(await Promise.all(HOSTS.slice(1).map((h) => snapshotHost(fleet.host(h), { mtimes: true })))).toEqual(productionBefore);
      for (const h of HOSTS.slice(1)) expect(entries(run, h, 'apply')).toEqual([]);
      expect(run.stderr).toMatch(/ROLLED BACK/);
    } finally {
      await fleet.host('stage1').ssh(`rm -f ${FAIL_CHECK_FILE}`);
    }
  }, FLEET_TEST_TIMEOUT_MS);

  it('refuses a stale plan before changing anything, and says how to re-plan', async () => {
    // A plan computed against an older generation than the hosts are on now.
    const stalePlanDir = join(work, 'stale');
    const stale = await writeFixturePlan(stalePlanDir, { hosts: addressesOf(fleet), config: () => 'version=stale' });
    expect(stale.hosts.web1?.baseGeneration).toBeNull();
    const before = await Promise.all(HOSTS.map((h) => snapshotHost(fleet.host(h), { mtimes: true })));
    const run = await applyPlan(fleet, stalePlanDir);
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toContain('the plan is stale');
    expect(run.stderr).toContain('bin/plan POLICY --live');
    expect(run.journal.entries.filter((e) => e.step === 'apply')).toEqual([]);
    expect(await Promise.all(HOSTS.map((h) => snapshotHost(fleet.host(h), { mtimes: true })))).toEqual(before);
  }, FLEET_TEST_TIMEOUT_MS);

  it('fails a host that is down while the others end on the new generation, and a re-run converges', async () => {
    const change = await plan({ config: () => 'version=4', failureBudget: 1 });
    await fleet.host('web2').stop();
    let run;
    try {
      run = await applyPlan(fleet, change.dir);
    } finally {
      await fleet.host('web2').start();
    }
    expect(run.exitCode, run.stderr).toBe(1);
    expect(entries(run, 'web2', 'apply')[0]?.result).toBe('failed');
    for (const h of ['stage1', 'web1', 'web3']) {
      expect(entries(run, h, 'apply')[0]?.result, h).toBe('changed');
      expect((await fleet.host(h).ssh(`cat ${CONFIG_FILE}`)).stdout).toBe('version=4\n');
    }
    expect((await fleet.host('web2').ssh(`cat ${CONFIG_FILE}`)).stdout).toBe('version=2\n');

    const rerun = await applyPlan(fleet, change.dir);
    expect(rerun.exitCode, rerun.stderr).toBe(0);
    expect(entries(rerun, 'web2', 'apply')[0]?.result).toBe('changed');
    for (const h of ['stage1', 'web1', 'web3']) expect(entries(rerun, h, 'apply')[0]?.result).toBe('unchanged');
    for (const h of HOSTS) expect((await fleet.host(h).ssh(`cat ${CONFIG_FILE}`)).stdout).toBe('version=4\n');
    current = change.plan;
  }, FLEET_TEST_TIMEOUT_MS);
});
