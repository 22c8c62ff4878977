// The rollout against image roots: the real host agent runs through local transports into one
// directory per host (systemctl --root for enablement), so waves, batches, budgets, soak, stale
// plans and the fleet lock are exercised in seconds without booting anything. Health gates need a
// running system and are covered by the fleet tests (test/fleet/apply-*.test.ts).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FleetLock } from '../../lib/apply/fleet-lock.ts';
import { hostBundle, loadReviewedPlan } from '../../lib/apply/bundle.ts';
import { Journal, type JournalDocument } from '../../lib/apply/journal.ts';
import { LocalTransport } from '../../lib/hosts/local-transport.ts';
import { readLiveState, type LiveHost } from '../../lib/hosts/live-state.ts';
import { rollout, wavesOf, type RolloutOptions } from '../../lib/apply/rollout.ts';
import { SecretValues } from '../../lib/plan/secrets.ts';
import type { PlanDocument } from '../../lib/plan/plan-format.ts';
import { CONFIG_FILE, writeFixturePlan, type FixtureOptions } from '../fixtures/plan-dir.ts';
import { programsAvailable } from '../programs.ts';

const HOSTS = ['stage1', 'web1', 'web2', 'web3'];
// Image roots are never contacted over ssh; these only satisfy the plan format.
const ADDRESSES = Object.fromEntries(HOSTS.map((h, i) => [h, { address: `127.0.1.${i + 1}`, port: 22, hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixtureFixtureFixtureFixtureFixtureFixture' }]));

describe.skipIf(!programsAvailable('test/apply/rollout.test.ts', ['systemctl']))('rollout into image roots', { timeout: 180_000 }, () => {
  let work: string;
  let transports: Map<string, LocalTransport[]>;
  let current: PlanDocument | undefined;
  let count = 0;
  let lockHolders: ChildProcess[];

  beforeEach(() => {
    work = mkdtempSync(join(tmpdir(), 'upkeep-rollout-'));
    for (const h of HOSTS) mkdirSync(join(work, 'roots', h, 'etc/systemd/system'), { recursive: true });
    transports = new Map();
    current = undefined;
    lockHolders = [];
  });
  afterEach(() => {
    for (const p of lockHolders) p.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });

  const root = (host: string) => join(work, 'roots', host);
  const connect = (host: string): LocalTransport => {
    const t = new LocalTransport(root(host), host);
    transports.set(host, [...(transports.get(host) ?? []), t]);
    return t;
  };

  async function plan(options: Omit<FixtureOptions, 'hosts' | 'base'> = {}): Promise<string> {
    count += 1;
    const dir = join(work, `plan-${count}`);
    await writeFixturePlan(dir, { hosts: ADDRESSES, ...(current && { base: current }), ...options });
    return dir;
  }

  async function run(dir: string, extra: Partial<RolloutOptions> = {}) {
    const planDir = await loadReviewedPlan(dir);
    const journalFile = join(dir, 'journal.json');
    const journal = new Journal({ file: journalFile, planId: planDir.plan.plan_id, fleet: planDir.plan.fleet });
    const main = new Map<string, LocalTransport>();
    const lines: string[] = [];
    transports = new Map();
    const result = await rollout({
      plan: planDir.plan,
      bundle: (host) => hostBundle(planDir, host, { baseDir: dir }, new SecretValues()),
      connections: { transport: (h) => main.get(h) ?? (main.set(h, connect(h)), main.get(h) as LocalTransport), freshTransport: connect },
      journal,
      progress: (line) => lines.push(line),
      ...extra,
    });
    const doc = JSON.parse(readFileSync(journalFile, 'utf8')) as JournalDocument;
    const roundTrips = Object.fromEntries([...transports].map(([h, ts]) => [h, ts.reduce((n, t) => n + t.roundTrips, 0)]));
    if (result.exitCode === 0) current = planDir.plan;
    return { result, journal: doc, progress: lines.join('\n'), roundTrips };
  }

  it('rolls out group by group in plan order: staging alone, then production in batches of its batchSize', async () => {
    const { result, journal } = await run(await plan({ batchSize: 2 }));
    expect(result.exitCode).toBe(0);
    const applies = journal.entries.filter((e) => e.step === 'apply').map((e) => `${e.wave}:${e.group}:${e.host}:${e.result}`);
    expect(applies.slice(0, 1)).toEqual(['1:staging:stage1:changed']);
    expect(applies.slice(1, 3).sort()).toEqual(['2:production:web1:changed', '2:production:web2:changed']);
    expect(applies.slice(3)).toEqual(['3:production:web3:changed']);
    for (const h of HOSTS) {
      expect(readFileSync(join(root(h), CONFIG_FILE), 'utf8')).toBe('version=1\n');
      // The link points at the unit's path inside the image, so it is read, not followed.
      expect(readlinkSync(join(root(h), 'etc/systemd/system/timers.target.wants/upkeep-fixture-01.timer'))).toBe('/etc/systemd/system/upkeep-fixture-01.timer');
    }
    expect(journal.outcome).toBe('ok');
  });

  it('reads each host once and changes nothing when the hosts already match the plan', async () => {
    const dir = await plan();
    expect((await run(dir)).result.exitCode).toBe(0);
    const again = await run(dir);
    expect(again.result.hosts.map((h) => h.status)).toEqual(['unchanged', 'unchanged', 'unchanged', 'unchanged']);
    expect(again.roundTrips).toEqual({ stage1: 1, web1: 1, web2: 1, web3: 1 });
  });

  it('takes the fleet lock on the lock host and releases it, two round trips more there', async () => {
    const dir = await plan();
    expect((await run(dir)).result.exitCode).toBe(0);
    const lockTransport = new LocalTransport(root('stage1'), 'stage1');
    const fleetLock = new FleetLock({ transport: lockTransport, runId: 'run-a', holder: 'tester', planId: current?.plan_id ?? '' });
    const again = await run(dir, { fleetLock });
    expect(again.result.exitCode).toBe(0);
    expect(lockTransport.roundTrips).toBe(2);
    expect(existsSync(join(root('stage1'), 'var/lib/upkeep/fleet-lock'))).toBe(false);
  });

  it('refuses to start while another run holds the fleet lock, naming it, and takes it over with breakLock', async () => {
    const dir = await plan();
    const other = new FleetLock({ transport: new LocalTransport(root('stage1'), 'stage1'), runId: 'run-other', holder: 'ci@runner-7 pid 99', planId: 'f'.repeat(64) });
    await other.acquire();
    const mine = () => new FleetLock({ transport: new LocalTransport(root('stage1'), 'stage1'), runId: 'run-mine', holder: 'me', planId: 'a'.repeat(64) });
    const refused = await run(dir, { fleetLock: mine() });
    expect(refused.result.exitCode).toBe(1);
    expect(refused.result.stoppedBecause).toMatch(/locked by ci@runner-7 pid 99 \(run run-other, plan ffffffffffff\) for \d+s; renewed \d+s ago/);
    expect(refused.journal.entries.filter((e) => e.step.startsWith('fleet-')).map((e) => [e.step, e.result])).toEqual([['fleet-lock', 'failed']]);
    expect(refused.journal.entries.filter((e) => e.step === 'apply')).toEqual([]);
    expect(existsSync(join(root('stage1'), CONFIG_FILE))).toBe(false);

    const forced = await run(dir, { fleetLock: mine(), breakLock: true });
    expect(forced.result.exitCode).toBe(0);
    const lockEntry = forced.journal.entries.find((e) => e.step === 'fleet-lock');
    expect(lockEntry).toMatchObject({ result: 'ok' });
    expect(lockEntry?.detail).toContain('broke the lock of ci@runner-7 pid 99');
    // The displaced run finds out at its next renewal and stops.
    await expect(other.renew()).rejects.toThrow(/fleet lock on stage1 was taken over/);
  });

  it('refuses a plan computed against other generations before touching any host', async () => {
    expect((await run(await plan())).result.exitCode).toBe(0);
    current = undefined; // the next plan believes nothing was applied
    const stale = await run(await plan({ config: () => 'version=2' }));
    expect(stale.result.exitCode).toBe(1);
    expect(stale.progress).toContain('the plan is stale: 4 host(s)');
    expect(stale.progress).toContain('bin/plan POLICY --live');
    expect(stale.journal.entries.filter((e) => e.step === 'apply')).toEqual([]);
    for (const h of HOSTS) expect(readFileSync(join(root(h), CONFIG_FILE), 'utf8')).toBe('version=1\n');
  });

  it('rolls the whole wave back and stops when a host fails beyond the failure budget', async () => {
    expect((await run(await plan({ batchSize: 2 }))).result.exitCode).toBe(0);
    // Another session holds web1's host lock for the whole rollout.
    const lockFile = join(root('web1'), 'var/lib/upkeep/lock');
    const holder = spawn('flock', [lockFile, 'sleep', '60'], { stdio: 'ignore' });
    lockHolders.push(holder);
    await new Promise((done) => setTimeout(done, 300));
    const failing = await run(await plan({ config: () => 'version=2', batchSize: 2, failureBudget: 0 }));
    expect(failing.result.exitCode).toBe(3);
    const status = Object.fromEntries(failing.result.hosts.map((h) => [h.host, h.status]));
    expect(status).toEqual({ stage1: 'changed', web1: 'failed', web2: 'rolled-back', web3: 'not-started' });
    expect(readFileSync(join(root('web2'), CONFIG_FILE), 'utf8')).toBe('version=1\n');
    expect(readFileSync(join(root('web3'), CONFIG_FILE), 'utf8')).toBe('version=1\n');
    expect(readFileSync(join(root('stage1'), CONFIG_FILE), 'utf8')).toBe('version=2\n');
  });

  it('goes on within the failure budget, and reports the failed host', async () => {
    expect((await run(await plan({ batchSize: 2 }))).result.exitCode).toBe(0);
    const holder = spawn('flock', [join(root('web1'), 'var/lib/upkeep/lock'), 'sleep', '60'], { stdio: 'ignore' });
    lockHolders.push(holder);
    await new Promise((done) => setTimeout(done, 300));
    const partial = await run(await plan({ config: () => 'version=2', batchSize: 2, failureBudget: 1 }));
    expect(partial.result.exitCode).toBe(1);
    expect(Object.fromEntries(partial.result.hosts.map((h) => [h.host, h.status]))).toEqual({ stage1: 'changed', web1: 'failed', web2: 'changed', web3: 'changed' });
    expect(partial.journal.entries.find((e) => e.host === 'web1' && e.step === 'apply')?.detail).toMatch(/lock/i);
  });

  it('stops after staging when a staging host failed, even within staging\'s failure budget: production keeps its generation', async () => {
    expect((await run(await plan())).result.exitCode).toBe(0);
    const holder = spawn('flock', [join(root('stage1'), 'var/lib/upkeep/lock'), 'sleep', '60'], { stdio: 'ignore' });
    lockHolders.push(holder);
    await new Promise((done) => setTimeout(done, 300));
    const failing = await run(await plan({ config: () => 'version=2', stagingFailureBudget: 1 }));
    expect(failing.result.exitCode).toBe(1);
    expect(Object.fromEntries(failing.result.hosts.map((h) => [h.host, h.status]))).toEqual({ stage1: 'failed', web1: 'not-started', web2: 'not-started', web3: 'not-started' });
    expect(failing.result.stoppedBecause).toContain('a change that failed on staging is not promoted: stopped before production');
    expect(failing.journal.entries.find((e) => e.step === 'stop')).toMatchObject({ group: 'staging', result: 'failed' });
    for (const h of ['web1', 'web2', 'web3']) expect(readFileSync(join(root(h), CONFIG_FILE), 'utf8')).toBe('version=1\n');
  });

  it('waits the soak time between groups, and records a skipped soak', async () => {
    const slept: number[] = [];
    const sleep = async (ms: number) => void slept.push(ms);
    const soaked = await run(await plan({ soakSeconds: 7 }), { sleep });
    expect(soaked.result.exitCode).toBe(0);
    expect(soaked.journal.entries.find((e) => e.step === 'soak')).toMatchObject({ group: 'staging', result: 'ok' });
    expect(slept).toEqual([7000]);

    const skipped = await run(await plan({ soakSeconds: 7, config: () => 'version=2' }), { sleep, skipSoak: true });
    expect(skipped.result.exitCode).toBe(0);
    expect(skipped.journal.entries.find((e) => e.step === 'soak')).toMatchObject({ result: 'skipped', detail: '--skip-soak: 7s soak of staging skipped' });
    expect(slept).toEqual([7000]);
  });

  it('reads the live generation and the drift of every host for planning against the live fleet', async () => {
    expect((await run(await plan())).result.exitCode).toBe(0);
    writeFileSync(join(root('web2'), CONFIG_FILE), 'edited by hand\n');
    const live = await readLiveState(current as PlanDocument, (h) => new LocalTransport(root(h), h));
    expect(Object.keys(live)).toEqual(HOSTS);
    const web2 = live.web2 as LiveHost;
    expect(web2.generation).toBe(current?.hosts.web2?.generation);
    expect(web2.drift).toEqual([{ path: CONFIG_FILE, fields: ['content'] }]);
    expect(web2.files.map((f) => f.path)).toEqual(current?.hosts.web2?.files.map((f) => f.path));
    expect((live.web1 as LiveHost).drift).toEqual([]);
  });

  it('splits a group into waves of its batch size', () => {
    const group = { name: 'p', after: [], staging: false, soakSeconds: 0, batchSize: 2, failureBudget: 0, hosts: ['a', 'b', 'c', 'd', 'e'] };
    expect(wavesOf(group)).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    expect(wavesOf({ ...group, batchSize: 0 })).toEqual([['a'], ['b'], ['c'], ['d'], ['e']]);
  });
});
