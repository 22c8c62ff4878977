// The host agent on a real host (systemd-nspawn, booting systemd, reached over ssh): what one
// apply installs, that a repeated apply touches nothing, that a rollback is byte for byte.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apply, healthGate, readState, rollback } from '../../lib/hosts/host-agent.ts';
import type { SshTransport } from '../../lib/hosts/ssh-transport.ts';
import { snapshotHost } from '../fleet/apply-helpers.ts';
import { FLEET_HOOK_TIMEOUT_MS, FLEET_TEST_TIMEOUT_MS, fleetAvailable, startFleet, type TestFleet, type TestHost } from '../fleet/testbed.ts';
import { CHECK, generationOf, sshTo, tickBundle, TIMER } from './host-fixtures.ts';

const v1 = tickBundle('1', { packages: ['coreutils'] });
const v2 = tickBundle('2', { packages: ['coreutils'] });
const g1 = generationOf(v1);
const g2 = generationOf(v2);

/** How often systemd (PID 1) reloaded its units since boot. */
async function reloads(host: TestHost): Promise<number> {
  const r = await host.ssh('journalctl -b --no-pager -o cat _PID=1 | grep -c "^Reloading" || true');
  return Number(r.stdout.trim());
}

async function activeSince(host: TestHost, unit: string): Promise<string> {
  return (await host.ssh(`systemctl show -p ActiveEnterTimestampMonotonic --value ${unit}`)).stdout.trim();
}

describe.skipIf(!fleetAvailable('host agent apply tests on the real fleet'))('applying generations to a real host', () => {
  let fleet: TestFleet;
  let host: TestHost;
  let t: SshTransport;
  beforeAll(async () => {
    fleet = await startFleet(['agent1']);
    host = fleet.host('agent1');
    t = sshTo(fleet, host);
  }, FLEET_HOOK_TIMEOUT_MS);
  afterAll(async () => {
    await t?.close();
    await fleet?.stop();
  }, FLEET_HOOK_TIMEOUT_MS);

  it('installs the unit and timer on the first apply, and systemctl list-timers shows the timer', async () => {
    const result = await apply(t, v1, { planId: 'plan-1', generation: g1, baseGeneration: null });
    expect(result.changed).toBe(true);
    expect(result.daemonReloaded).toBe(true);
    expect(result.unitsEnabled).toEqual([TIMER]);
    const timers = await host.ssh('systemctl list-timers --all --no-legend --no-pager');
    expect(timers.stdout).toContain(TIMER);
    const state = await readState(t);
    expect(state.generation).toBe(g1);
    expect(state.planId).toBe('plan-1');
    expect(state.units).toEqual([{ name: TIMER, enabled: 'enabled', active: 'active' }]);
    expect(state.drift).toEqual([]);
  }, FLEET_TEST_TIMEOUT_MS);

  it('changes, reloads and restarts nothing on a second apply, in exactly one round trip', async () => {
    const before = await snapshotHost(host, { mtimes: true });
    const reloadsBefore = await reloads(host);
    const timerSince = await activeSince(host, TIMER);
    // The first apply did reload, and the timer has a start time: both measures can move.
    expect(reloadsBefore).toBeGreaterThan(0);
    expect(Number(timerSince)).toBeGreaterThan(0);
    const fresh = sshTo(fleet, host);
    try {
      const again = await apply(fresh, v1, { planId: 'plan-1', generation: g1, baseGeneration: null });
      expect(again.changed).toBe(false);
      expect(again.filesWritten).toEqual([]);
      expect(again.daemonReloaded).toBe(false);
      expect(fresh.roundTrips).toBe(1);
    } finally {
      await fresh.close();
    }
    expect(await snapshotHost(host, { mtimes: true })).toBe(before);
    expect(await reloads(host)).toBe(reloadsBefore);
    expect(await activeSince(host, TIMER)).toBe(timerSince);
  }, FLEET_TEST_TIMEOUT_MS);

  it('writes only the changed config file and neither reloads systemd nor restarts the timer', async () => {
    const reloadsBefore = await reloads(host);
    const timerSince = await activeSince(host, TIMER);
    const result = await apply(t, v2, { planId: 'plan-2', generation: g2, baseGeneration: g1 });
    expect(result.filesWritten).toEqual(['/etc/upkeep/test.conf']);
    expect(result.daemonReloaded).toBe(false);
    expect(result.unitsRestarted).toEqual([]);
    expect(await reloads(host)).toBe(reloadsBefore);
    expect(await activeSince(host, TIMER)).toBe(timerSince);
    expect((await host.ssh('cat /etc/upkeep/test.conf')).stdout).toBe('version=2\n');
  }, FLEET_TEST_TIMEOUT_MS);

  it('rolls back byte for byte: files, modes, owners, enabled and running units', async () => {
    const onCurrent = await snapshotHost(host);
    const current = (await readState(t)).generation;
    // The next generation changes the timer's schedule, drops the check service, adds a 0600 file.
    const next = {
      ...tickBundle('3', { secret: 'rotated-secret\n' }),
      files: tickBundle('3', { secret: 'rotated-secret\n' })
        .files.filter((f) => !f.path.endsWith(CHECK))
        .map((f) => (f.path.endsWith(TIMER) ? { ...f, content: String(f.content).replace('03:00:00', '04:30:00') } : f)),
    };
    const g3 = generationOf(next);
    const switched = await apply(t, next, { planId: 'plan-3', generation: g3, baseGeneration: current });
    expect(switched.daemonReloaded).toBe(true);
    expect(switched.unitsRestarted).toEqual([TIMER]);
    expect(switched.filesRemoved).toEqual([`/etc/systemd/system/${CHECK}`]);
    expect(await snapshotHost(host)).not.toBe(onCurrent);

    expect(await rollback(t, { toGeneration: current })).toEqual({ host: host.name, from: g3, to: current });
    expect(await snapshotHost(host)).toBe(onCurrent);
    const state = await readState(t);
    expect(state.generation).toBe(current);
    expect(state.drift).toEqual([]);
    expect(state.units).toEqual([{ name: TIMER, enabled: 'enabled', active: 'active' }]);
    expect((await host.ssh(`systemctl show -p TimersCalendar --value ${TIMER}`)).stdout).toContain('03:00:00');
  }, FLEET_TEST_TIMEOUT_MS);

  it('installs a missing package before switching, and leaves present ones alone', async () => {
    expect((await host.ssh('dpkg-query -W -f="${Status}" tree')).stdout).not.toBe('install ok installed');
    const current = (await readState(t)).generation;
    const withTree = tickBundle('1', { packages: ['coreutils', 'tree'] });
    const result = await apply(t, withTree, { planId: 'plan-4', generation: generationOf(withTree), baseGeneration: current, timeoutMs: 170_000 });
    expect(result.packagesInstalled).toEqual(['tree']);
    expect((await host.ssh('tree --version')).exitCode).toBe(0);
    const again = await apply(t, withTree, { planId: 'plan-4', generation: generationOf(withTree), baseGeneration: current });
    expect(again.changed).toBe(false);
    expect(again.packagesInstalled).toEqual([]);
  }, FLEET_TEST_TIMEOUT_MS);

  it('health gate starts the check now and reports a failing one with the system state', async () => {
    const passing = await healthGate(t, [CHECK]);
    expect(passing.checks).toEqual([{ unit: CHECK, ok: true, severity: 'ok', result: 'success 0' }]);
    expect(passing.inactiveTimers).toEqual([]);
    expect(passing.ok).toBe(true);

    await host.ssh('mv /etc/upkeep/test.conf /etc/upkeep/test.conf.away');
    try {
      const failing = await healthGate(t, [CHECK]);
      expect(failing.ok).toBe(false);
      expect(failing.checks).toEqual([{ unit: CHECK, ok: false, severity: 'failed', result: 'exit-code 1' }]);
      expect(failing.failedUnits).toContain(CHECK);
      expect(failing.problems.join('\n')).toMatch(/check upkeep-test-check.service failed/);
    } finally {
      await host.ssh(`mv /etc/upkeep/test.conf.away /etc/upkeep/test.conf && systemctl reset-failed ${CHECK}`);
    }
  }, FLEET_TEST_TIMEOUT_MS);

  it('reports an inactive managed timer as a failed gate', async () => {
    await host.ssh(`systemctl stop ${TIMER}`);
    try {
      const report = await healthGate(t, []);
      expect(report.inactiveTimers).toEqual([TIMER]);
      expect(report.ok).toBe(false);
    } finally {
      await host.ssh(`systemctl start ${TIMER}`);
    }
  }, FLEET_TEST_TIMEOUT_MS);
});
