// bin/apply when things go wrong on a real fleet: the applier killed mid-wave or during staging's
// soak (a CI job's timeout), a change that cuts ssh, a watcher that cannot run its checks after a
// change, a drift repair that fails its gate, and a fleet lock held by another run.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FLEET_LOCK_FILE } from '../../lib/apply/fleet-lock.ts';
import { readState } from '../../lib/hosts/host-agent.ts';
import { SshTransport } from '../../lib/hosts/ssh-transport.ts';
import type { PlanDocument } from '../../lib/plan/plan-format.ts';
import { CONFIG_FILE, FAIL_CHECK_FILE, writeFixturePlan, type FixtureOptions } from '../fixtures/plan-dir.ts';
import { addressesOf, applyPlan, entries } from './apply-helpers.ts';
import type { ManagedFile } from '../../lib/compile/desired-state.ts';
import { FLEET_HOOK_TIMEOUT_MS, FLEET_TEST_TIMEOUT_MS, fleetAvailable, startFleet, type TestFleet } from './testbed.ts';

const HOSTS = ['stage1', 'web1', 'web2'];
const BIN_APPLY = resolve(import.meta.dirname, '../../bin/apply');

describe.skipIf(!fleetAvailable('the applier fault tests (test/fleet/apply-faults.test.ts)'))('bin/apply under faults on a real fleet', () => {
  let fleet: TestFleet;
  let work: string;
  let current: PlanDocument | undefined;
  let planCount = 0;

  async function plan(options: Omit<FixtureOptions, 'hosts' | 'base'> = {}): Promise<{ dir: string; plan: PlanDocument }> {
    planCount += 1;
    const dir = join(work, `plan-${planCount}`);
    const document = await writeFixturePlan(dir, { hosts: addressesOf(fleet), ...(current && { base: current }), ...options });
    return { dir, plan: document };
  }

  /**
   * The agent's own view of a host, over a connection of its own, once no session holds the host's
   * lock (a killed applier's remote agent may still be finishing or undoing its switch).
   */
  async function hostState(name: string) {
    const host = fleet.host(name);
    const transport = new SshTransport({ host: name, address: host.address, knownHostsFile: fleet.knownHostsFile, identityFile: fleet.identityFile });
    try {
      for (let attempt = 0; ; attempt += 1) {
        const state = await readState(transport);
        if (state.lock === null || attempt >= 30) return state;
        await new Promise((done) => setTimeout(done, 1000));
      }
    } finally {
      await transport.close();
    }
  }

  /** bin/apply, killed (SIGKILL, as a CI job's timeout ends it) once its progress says `when`. */
  async function applyKilledAt(dir: string, when: string): Promise<string> {
    const child = spawn(BIN_APPLY, [dir, '--identity', fleet.identityFile, '--confirm-timeout', '15', '--break-lock'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    await new Promise<void>((done) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes(when)) child.kill('SIGKILL');
      });
      child.on('exit', () => done());
    });
    expect(child.signalCode, stderr).toBe('SIGKILL');
    return stderr;
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'upkeep-apply-faults-'));
    fleet = await startFleet(HOSTS);
    const first = await plan();
    const run = await applyPlan(fleet, first.dir);
    if (run.exitCode !== 0) throw new Error(`first apply failed:\n${run.stderr}`);
    current = first.plan;
  }, FLEET_HOOK_TIMEOUT_MS);
  afterAll(async () => {
    await fleet?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  }, FLEET_HOOK_TIMEOUT_MS);

  it('reports a fleet lock held by another run with its holder and age, and takes it over only with --break-lock', async () => {
    const change = await plan({ config: () => 'version=locked' });
    // A lease left by a run that stopped renewing it ten minutes ago.
    await fleet.host('stage1').ssh(
      `now=$(date +%s); printf '%s\\n' deadbeef 'ci@runner-7 pid 4242' 0123456789abcdef "$((now - 3600))" "$((now - 600))" > ${FLEET_LOCK_FILE}`,
    );
    const refused = await applyPlan(fleet, change.dir);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toMatch(/the fleet is locked by ci@runner-7 pid 4242 \(run deadbeef, plan 0123456789ab\) for 360\ds; STALE: not renewed for 60\ds/);
    expect(refused.stderr).toContain('--break-lock');
    expect(refused.journal.entries.filter((e) => e.step === 'apply')).toEqual([]);

    const forced = await applyPlan(fleet, change.dir, ['--break-lock']);
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(entries(forced, 'stage1', 'fleet-lock')[0]?.detail).toContain('broke the lock of ci@runner-7 pid 4242');
    expect((await fleet.host('stage1').ssh(`test -e ${FLEET_LOCK_FILE}`)).exitCode).not.toBe(0);
    current = change.plan;
  }, FLEET_TEST_TIMEOUT_MS);

  it('leaves every host on its old or new generation when the applier is killed mid-wave, and a re-run converges', async () => {
    const before = current as PlanDocument;
    const change = await plan({ config: () => 'version=killed', batchSize: 2 });
    const child = spawn(BIN_APPLY, [change.dir, '--identity', fleet.identityFile, '--skip-soak', '--confirm-timeout', '15'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    const killed = new Promise<void>((done) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        // The production wave has started: its hosts are being changed right now.
        if (stderr.includes('wave 2/')) {
          setTimeout(() => child.kill('SIGKILL'), 400);
        }
      });
      child.on('exit', () => done());
    });
    await killed;
    expect(stderr).toContain('wave 2/');
    expect(child.signalCode).toBe('SIGKILL');

    for (const name of HOSTS) {
      const state = await hostState(name);
      expect([before.hosts[name]?.generation, change.plan.hosts[name]?.generation], name).toContain(state.generation);
      expect(state.drift, name).toEqual([]);
      const config = (await fleet.host(name).ssh(`cat ${CONFIG_FILE}`)).stdout;
      expect(config).toBe(state.generation === change.plan.hosts[name]?.generation ? 'version=killed\n' : 'version=locked\n');
    }

    // The killed run's fleet lock is still there: the re-run names it, then takes it over explicitly.
    const refused = await applyPlan(fleet, change.dir);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toMatch(/the fleet is locked by .* pid \d+/);
    const rerun = await applyPlan(fleet, change.dir, ['--break-lock']);
    expect(rerun.exitCode, rerun.stderr).toBe(0);
    for (const name of HOSTS) {
      expect((await hostState(name)).generation).toBe(change.plan.hosts[name]?.generation);
      expect((await fleet.host(name).ssh(`cat ${CONFIG_FILE}`)).stdout).toBe('version=killed\n');
    }
    current = change.plan;
  }, FLEET_TEST_TIMEOUT_MS);

  it('lets a host roll itself back when its change stops ssh from accepting new logins', async () => {
    // The host reloads sshd whenever its configuration directory changes, as a policy that manages
    // sshd drop-ins would arrange; this reloader is host setup, outside the plan.
    const stage1 = fleet.host('stage1');
    const setup = await stage1.ssh(
      [
        "printf '[Path]\\nPathChanged=/etc/ssh/sshd_config.d\\n' > /etc/systemd/system/sshd-config-reload.path",
        "printf '[Service]\\nType=oneshot\\nExecStart=/bin/systemctl reload ssh.service\\n' > /etc/systemd/system/sshd-config-reload.service",
        'systemctl daemon-reload && systemctl start sshd-config-reload.path',
      ].join(' && '),
    );
    expect(setup.exitCode, setup.stderr).toBe(0);
    const before = current as PlanDocument;
    const change = await plan({
      config: () => 'version=cut',
      extraFiles: (host) => (host === 'stage1' ? [{ path: '/etc/ssh/sshd_config.d/upkeep-test-deny.conf', mode: '0644', owner: 'root:root', content: 'DenyUsers root\n' }] : []),
    });
    const run = await applyPlan(fleet, change.dir, ['--confirm-timeout', '10']);
    expect(run.exitCode, run.stderr).toBe(3);
    expect(entries(run, 'stage1', 'confirm')[0]?.result).toBe('failed');
    expect(entries(run, 'stage1', 'self-rollback')[0]?.result).toBe('rolled-back');
    for (const h of ['web1', 'web2']) expect(entries(run, h, 'apply')).toEqual([]);
    // New logins work again, and the host is on its previous generation.
    const state = await hostState('stage1');
    expect(state.generation).toBe(before.hosts.stage1?.generation);
    expect((await stage1.ssh('test -e /etc/ssh/sshd_config.d/upkeep-test-deny.conf')).exitCode).toBe(1);
  }, FLEET_TEST_TIMEOUT_MS);

  it('gates staging again when a run was cut off during its soak: a check that broke meanwhile sends it back, and production is not touched', async () => {
    const before = current as PlanDocument;
    const change = await plan({ config: () => 'version=cut-soak', soakSeconds: 20 });
    const stderr = await applyKilledAt(change.dir, 'soak: watching staging');
    expect(stderr).toContain('soak: watching staging for 20s before production');
    const cut = await hostState('stage1');
    expect(cut.generation).toBe(change.plan.hosts.stage1?.generation);
    expect(cut.unsettled?.generation).toBe(change.plan.hosts.stage1?.generation);
    for (const h of ['web1', 'web2']) expect((await hostState(h)).generation).toBe(before.hosts[h]?.generation);

    await fleet.host('stage1').ssh(`touch ${FAIL_CHECK_FILE}`);
    try {
      // The re-run finds stage1 on the new generation, its soak not over: it is judged, not taken as done.
      const rerun = await applyPlan(fleet, change.dir, ['--break-lock']);
      expect(rerun.exitCode, rerun.stderr).toBe(3);
      expect(entries(rerun, 'stage1', 'apply')[0]?.detail).toContain('switched by an earlier run that ended before its gates passed');
      expect(entries(rerun, 'stage1', 'health-gate')[0]).toMatchObject({ result: 'failed' });
      expect(entries(rerun, 'stage1', 'rollback')[0]).toMatchObject({ result: 'rolled-back' });
      for (const h of ['web1', 'web2']) expect(entries(rerun, h, 'apply')).toEqual([]);
      const back = await hostState('stage1');
      expect(back.generation).toBe(before.hosts.stage1?.generation);
      expect(back.unsettled).toBeNull();
    } finally {
      await fleet.host('stage1').ssh(`rm -f ${FAIL_CHECK_FILE}`);
    }
  }, FLEET_TEST_TIMEOUT_MS);

  it('soaks what is left of staging\'s soak, counted from its switch, when a run was cut off during it, and only then changes production', async () => {
    const change = await plan({ config: () => 'version=resumed-soak', soakSeconds: 20 });
    await applyKilledAt(change.dir, 'soak: watching staging');
    const rerun = await applyPlan(fleet, change.dir, ['--break-lock'], { soak: true });
    expect(rerun.exitCode, rerun.stderr).toBe(0);
    const left = /soak: watching staging for (\d+)s \(what is left of its 20s soak: switched by an earlier run\)/.exec(rerun.stderr);
    expect(left, rerun.stderr).not.toBeNull();
    expect(Number(left?.[1])).toBeLessThan(20);
    // Judged in its wave and again after the soak, then settled; production after that.
    expect(entries(rerun, 'stage1', 'health-gate').map((e) => e.result)).toEqual(['ok', 'ok']);
    expect(entries(rerun, 'stage1', 'settle')[0]?.result).toBe('ok');
    const order = rerun.journal.entries.map((e) => `${e.host} ${e.step}`);
    expect(order.indexOf('stage1 settle')).toBeLessThan(order.indexOf('web1 apply'));
    for (const h of HOSTS) {
      expect((await fleet.host(h).ssh(`cat ${CONFIG_FILE}`)).stdout).toBe('version=resumed-soak\n');
      expect((await hostState(h)).unsettled, h).toBeNull();
    }
    current = change.plan;
  }, FLEET_TEST_TIMEOUT_MS);

  /** web2 watches stage1 (as a monitor's http check does): a check unit on web2 whose subject is stage1. */
  const watch = (host: string): ManagedFile[] =>
    host === 'web2'
      ? [
          { path: '/etc/upkeep/checks/stage1-watch.env', mode: '0644', owner: 'root:root', content: "UPKEEP_CHECK_SUBJECT='stage1'\n" },
          { path: '/etc/systemd/system/upkeep-check-stage1-watch.service', mode: '0644', owner: 'root:root', content: '[Unit]\nDescription=watches stage1\n\n[Service]\nType=oneshot\nExecStart=/bin/true\n' },
        ]
      : [];

  it("fails staging's gate when its watcher cannot run the checks it runs on it after the change, though it could just before", async () => {
    const watched = await plan({ config: () => 'version=watched', extraFiles: watch });
    const first = await applyPlan(fleet, watched.dir);
    expect(first.exitCode, first.stderr).toBe(0);
    current = watched.plan;

    const change = await plan({ config: () => 'version=unwatched', extraFiles: watch });
    const web2 = fleet.host('web2');
    let cut = false;
    try {
      // web2 is read before stage1 changes, and is gone (power lost) by the time stage1's gate runs.
      const run = await applyPlan(fleet, change.dir, [], {
        onProgress: (text) => {
          if (!cut && text.includes('stage1  changed')) {
            cut = true;
            web2.killNow();
          }
        },
      });
      expect(cut).toBe(true);
      expect(run.exitCode, run.stderr).toBe(3);
      expect(entries(run, 'stage1', 'health-gate')[0]).toMatchObject({ result: 'failed' });
      expect(entries(run, 'stage1', 'health-gate')[0]?.detail).toContain('the checks web2 runs on this host could not run');
      expect(entries(run, 'stage1', 'rollback')[0]).toMatchObject({ result: 'rolled-back' });
      expect(entries(run, 'web1', 'apply')).toEqual([]);
    } finally {
      await web2.kill();
      await web2.start();
    }
    expect((await fleet.host('stage1').ssh(`cat ${CONFIG_FILE}`)).stdout).toBe('version=watched\n');
  }, FLEET_TEST_TIMEOUT_MS);

  it('returns a drift repair that fails its gate to the state it repaired, not to an older generation', async () => {
    const stage1 = fleet.host('stage1');
    const was = await hostState('stage1');
    // The same policy planned again: nothing to change but what drifts.
    const same = await plan({ config: () => 'version=watched', extraFiles: watch });
    expect(same.plan.hosts.stage1?.generation).toBe(was.generation);
    // Someone edits the managed file by hand; applying the plan repairs it.
    await stage1.ssh(`echo 'version=hand-edited' > ${CONFIG_FILE} && touch ${FAIL_CHECK_FILE}`);
    try {
      const failed = await applyPlan(fleet, same.dir);
      expect(failed.exitCode, failed.stderr).toBe(3);
      expect(entries(failed, 'stage1', 'apply')[0]?.result).toBe('changed');
      const generation = (was.generation as string).slice(0, 12);
      expect(entries(failed, 'stage1', 'rollback')[0]?.detail).toBe(`${generation} -> ${generation}`);
      expect((await stage1.ssh(`cat ${CONFIG_FILE}`)).stdout).toBe('version=hand-edited\n');
      const state = await hostState('stage1');
      expect(state.generation).toBe(was.generation);
      expect(state.previousGeneration).toBe(was.previousGeneration);
    } finally {
      await stage1.ssh(`rm -f ${FAIL_CHECK_FILE}`);
    }
    const repaired = await applyPlan(fleet, same.dir);
    expect(repaired.exitCode, repaired.stderr).toBe(0);
    expect((await stage1.ssh(`cat ${CONFIG_FILE}`)).stdout).toBe('version=watched\n');
    expect((await hostState('stage1')).unsettled).toBeNull();
  }, FLEET_TEST_TIMEOUT_MS);
});
