// The rolling channel on hosts that run a rolling-release distribution: Debian testing, built from
// the machine's own mirror (testing-suite.ts), with a local Debian repository (deb-repo.ts) that
// serves one regular suite and no security suite, as a rolling distribution has none. stage1 is
// staging (its window open during the test), web1 production (its window closed).
// The tests build on each other in order, like successive days of one fleet.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { programsInShell } from '../program-usage.ts';
import { packageOf, PACKAGES, programsAvailable } from '../programs.ts';
import { applyPlan } from './apply-helpers.ts';
import { startDebRepo, type DebRepo } from './deb-repo.ts';
import { runCommand } from './run-command.ts';
import { debianTesting, ROLLING_SUITE } from './testing-suite.ts';
import { FLEET_HOOK_TIMEOUT_MS, fleetAvailable, startFleet, type TestFleet, type TestHost } from './testbed.ts';
import { runUpdateWave, type UpdateRun } from './update-run.ts';

const root = join(import.meta.dirname, '..', '..');
const HOSTS = ['stage1', 'web1'];
const SOAK_SECONDS = 20;
const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const DEADLINE_SECONDS = 86_400;

const testing = await debianTesting();
const available =
  fleetAvailable('the rolling-suite tests (test/fleet/rolling-suite.test.ts)') &&
  programsAvailable('the rolling-suite tests', ['dpkg-deb']) &&
  // No Debian testing to build the hosts from fails CI (UPKEEP_REQUIRE_FLEET=1) like a missing program.
  fleetAvailable('the rolling-suite tests (test/fleet/rolling-suite.test.ts): no Debian testing image', testing.ok ? { ok: true } : { ok: false, reason: testing.reason });

/** "HH:MM" UTC of now plus `minutes` (wrapping around midnight), for daily windows. */
function clock(minutes: number): string {
  const now = new Date();
  const total = (((now.getUTCHours() * 60 + now.getUTCMinutes() + minutes) % 1440) + 1440) % 1440;
  return `${String(Math.floor(total / 60)).padStart(2, '0')}:${String(total % 60).padStart(2, '0')}`;
}

describe.skipIf(!available)('the rolling channel on Debian testing hosts, with a real Debian repository', () => {
  const suite = testing.ok ? testing.suite : undefined;
  let fleet: TestFleet;
  let repo: DebRepo;
  let work: string;
  let planDir: string;
  let receiver: Server;
  const alerts: { host: string; check: string; severity: string; message: string }[] = [];
  let runs = 0;

  async function versions(pkg: string): Promise<Record<string, string>> {
    const entries = await Promise.all(HOSTS.map(async (name) => [name, (await fleet.host(name).ssh(`dpkg-query -W -f '\${Version}' ${pkg}`)).stdout.trim()] as const));
    return Object.fromEntries(entries);
  }

  /**
   * Lets the host's timer elapse now (a runtime drop-in: one second after it is restarted, no
   * randomized delay) and waits until the service it started has finished; its Result.
   */
  async function fireTimer(host: TestHost, unit: string): Promise<string> {
    const service = `${unit}.service`;
    const before = (await host.ssh(`systemctl show -p InvocationID --value ${service}`)).stdout.trim();
    const fired = await host.ssh(
      `mkdir -p /run/systemd/system/${unit}.timer.d && printf '[Timer]\\nOnActiveSec=1s\\nRandomizedDelaySec=0\\nAccuracySec=1s\\n' > /run/systemd/system/${unit}.timer.d/now.conf && systemctl daemon-reload && systemctl restart ${unit}.timer`,
    );
    expect(fired.exitCode, fired.stderr).toBe(0);
    const deadline = Date.now() + 600_000;
    for (;;) {
      const state = await host.ssh(`systemctl show -p InvocationID -p ActiveState -p Result ${service}`);
      const fields = Object.fromEntries(state.stdout.trim().split('\n').map((line) => line.split('=', 2) as [string, string]));
      if (fields.InvocationID !== before && fields.InvocationID !== '' && (fields.ActiveState === 'inactive' || fields.ActiveState === 'failed')) {
        await host.ssh(`rm -f /run/systemd/system/${unit}.timer.d/now.conf && systemctl daemon-reload`);
        if (fields.Result !== 'success') console.log((await host.ssh(`journalctl -u ${service} --no-pager | tail -40`)).stdout);
        return fields.Result ?? '';
      }
      if (Date.now() > deadline) throw new Error(`${host.name}: ${unit}.timer did not start ${service} within 10 minutes (${state.stdout.trim()})`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** `upkeep update KIND PLAN_DIR`, in this process; `whileRunning` sees its progress text as it grows. */
  async function update(kind: 'security' | 'routine', whileRunning?: (progress: () => string) => Promise<void>): Promise<UpdateRun> {
    runs += 1;
    return runUpdateWave({ kind, planDir, identityFile: fleet.identityFile, work, run: runs }, whileRunning);
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'upkeep-rolling-test-'));
    receiver = createServer((request, response) => {
      const body: Buffer[] = [];
      request.on('data', (c: Buffer) => body.push(c));
      request.on('end', () => {
        try {
          alerts.push(JSON.parse(Buffer.concat(body).toString('utf8')));
        } catch {
          // Not an alert.
        }
        response.writeHead(200).end('{}');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    // As Debian's own archive: the suite is "testing", its codename the one the hosts were built from.
    repo = await startDebRepo({ suites: [{ name: ROLLING_SUITE, codename: suite!.codename, security: false }] });
    await repo.publish({ name: 'upkeep-demo', version: '1.0-1', suite: ROLLING_SUITE });
    fleet = await startFleet(HOSTS, { suite: suite! });
    await Promise.all(
      HOSTS.map(async (name) => {
        const host = fleet.host(name);
        // The hosts really run testing (not the machine's release): their apt and os-release say so.
        const release = await host.ssh('. /etc/os-release && echo "$VERSION_CODENAME"');
        if (release.stdout.trim() !== suite!.codename) throw new Error(`${name} runs ${release.stdout.trim()}, not ${suite!.codename}`);
        await repo.useOn(host);
        const installed = await host.ssh('apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get install -y -q upkeep-demo', { timeoutMs: 600_000 });
        if (installed.exitCode !== 0) throw new Error(`${name}: ${installed.stderr}`);
      }),
    );
    const port = (receiver.address() as AddressInfo).port;
    const policy = {
      name: 'rolling',
      defaults: {
        updates: {
          channel: 'rolling',
          // Production's window: closed during the test (it opens two hours from now, daily).
          window: { every: 'week', days: DAYS, start: clock(120), duration: '1h' },
          security: { deadline: `${DEADLINE_SECONDS / 3600}h`, checkEvery: '1h' },
          reboot: 'never',
        },
        monitoring: {
          interval: '1m',
          failureThreshold: 1,
          recoveryThreshold: 1,
          routes: [{ name: 'ops', webhook: `http://127.0.0.1:${port}/hook` }],
          checks: { 'failed-units': { kind: 'failed-units' }, 'security-updates': { kind: 'security-updates' } },
        },
      },
      groups: {
        // Staging's window is open now, and closes before production's opens.
        staging: { staging: true, soak: `${SOAK_SECONDS}s`, updates: { window: { every: 'week', days: DAYS, start: clock(-30), duration: '2h' } } },
        production: { after: ['staging'], batchSize: 1 },
      },
      hosts: Object.fromEntries(
        HOSTS.map((name) => [
          name,
          { group: name === 'stage1' ? 'staging' : 'production', address: fleet.host(name).address, hostKey: fleet.host(name).hostKey, exempt: { backups: 'a test host: nothing to keep' } },
        ]),
      ),
    };
    writeFileSync(join(work, 'fleet.yaml'), stringify(policy));
    planDir = join(work, 'plan');
    const planned = await runCommand(join(root, 'bin', 'plan'), [join(work, 'fleet.yaml'), '--out', planDir], { env: { ...process.env, NO_COLOR: '1' } });
    if (planned.exitCode !== 2) throw new Error(`bin/plan exited ${planned.exitCode}: ${planned.stderr}${planned.stdout}`);
    const applied = await applyPlan(fleet, planDir);
    if (applied.exitCode !== 0) throw new Error(`bin/apply exited ${applied.exitCode}: ${applied.stderr}`);
    // The security timer's first run comes 5-20 minutes after boot and would race the waves this
    // test runs by hand (apt's lock, staging installing on its own). A runtime drop-in moves it a
    // day away; the timer stays active, as the health gate requires, and fireTimer runs it.
    await Promise.all(
      HOSTS.map((name) =>
        fleet
          .host(name)
          .ssh('mkdir -p /run/systemd/system/upkeep-security-updates.timer.d && printf "[Timer]\\nOnBootSec=1d\\nOnUnitActiveSec=1d\\n" > /run/systemd/system/upkeep-security-updates.timer.d/later.conf && systemctl daemon-reload && systemctl restart upkeep-security-updates.timer'),
      ),
    );
  }, FLEET_HOOK_TIMEOUT_MS);
  afterAll(async () => {
    await fleet?.stop();
    await repo?.stop();
    receiver?.closeAllConnections();
    receiver?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  }, FLEET_HOOK_TIMEOUT_MS);

  it('has on the testing hosts every program that the runtime programs the plan put there call', async () => {
    // The image of this suite is small (UPDATE_HOST_PACKAGES): what it lacks would show up here,
    // not as a puzzling failure of a later run.
    const host = fleet.host('web1');
    // The applier installs lib/runtime/upkeep-agent.sh as upkeep-agent.
    const scripts = (await host.ssh('ls /usr/local/lib/upkeep/')).stdout.trim().split('\n').map((file) => (file.endsWith('.sh') ? file : `${file}.sh`));
    expect(scripts).toEqual(expect.arrayContaining(['updates.sh', 'check-security-updates.sh', 'run-check.sh', 'send-webhook.sh', 'upkeep-agent.sh']));
    const programs = new Set(scripts.flatMap((script) => programsInShell(readFileSync(join(root, 'lib/runtime', script), 'utf8'))));
    // Only those test/programs.ts says test hosts have (not dnf, rpm, needrestart: notRunHere).
    const needed = [...programs].filter((program) => (PACKAGES[packageOf(program)!]?.on as readonly string[] | undefined)?.includes('hosts')).sort();
    expect(needed).toEqual(expect.arrayContaining(['apt-get', 'curl', 'dpkg-query', 'systemctl', 'unattended-upgrade']));
    const missing = await host.ssh(`for p in ${needed.join(' ')}; do command -v "$p" >/dev/null || echo "$p"; done`);
    expect(missing.exitCode, missing.stderr).toBe(0);
    expect(missing.stdout.trim().split('\n').filter(Boolean)).toEqual([]);
  });

  it('takes a new version of the regular suite through staging: production gets exactly that version, even when a newer one is published while staging soaks', async () => {
    const published = await repo.publish({ name: 'upkeep-demo', version: '1.1-1', suite: ROLLING_SUITE });
    let newer: Date | undefined;
    // A rolling distribution has no security archive: every update is a possible fix, so the
    // security wave (the one that runs within the deadline) takes it.
    const run = await update('security', async (progress) => {
      const deadline = Date.now() + 600_000;
      while (!progress().includes('soak: watching staging') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      newer = await repo.publish({ name: 'upkeep-demo', version: '1.2-1', suite: ROLLING_SUITE });
    });
    const done = new Date();
    expect(run.exitCode, run.stderr).toBe(0);
    expect(newer).toBeDefined();
    expect(run.promoted?.packages).toEqual([{ name: 'upkeep-demo', version: '1.1-1', kind: 'security', class: 'small', ageSeconds: expect.any(Number) }]);
    expect(await versions('upkeep-demo')).toEqual({ stage1: '1.1-1', web1: '1.1-1' });
    const staged = run.journal.entries.findIndex((e) => e.host === 'stage1' && e.step === 'health-gate');
    const promotion = run.journal.entries.findIndex((e) => e.host === 'web1' && e.step === 'promote-security');
    expect(staged).toBeGreaterThan(-1);
    expect(promotion).toBeGreaterThan(staged);
    expect(run.journal.entries[promotion]?.result).toBe('ok');
    expect(run.journal.entries.find((e) => e.step === 'soak')?.result).toBe('ok');
    console.log(
      `rolling (${ROLLING_SUITE}/${suite!.codename}): published -> installed on production: ${((done.getTime() - published.getTime()) / 1000).toFixed(1)}s (soak ${SOAK_SECONDS}s, 1 staging batch, 1 production batch)`,
    );
  }, 900_000);

  it('leaves production on the promoted version when its own timers run, even inside its window', async () => {
    const web1 = fleet.host('web1');
    expect(await fireTimer(web1, 'upkeep-security-updates')).toBe('success');
    expect((await versions('upkeep-demo')).web1).toBe('1.1-1');
    // The routine run at the window's opening (the clock moved into production's window).
    const inWindow = Math.floor(Date.now() / 1000) + 2 * 3600 + 5 * 60;
    const windowRun = await web1.ssh(`UPKEEP_NOW=${inWindow} /usr/local/lib/upkeep/updates.sh routine`, { timeoutMs: 600_000 });
    expect(windowRun.exitCode, windowRun.stderr).toBe(0);
    expect(windowRun.stdout).not.toContain('installed');
    expect((await versions('upkeep-demo')).web1).toBe('1.1-1');
    // Staging's own timer takes the newer version from the archive, as staging does.
    expect(await fireTimer(fleet.host('stage1'), 'upkeep-security-updates')).toBe('success');
    expect(await versions('upkeep-demo')).toEqual({ stage1: '1.2-1', web1: '1.1-1' });
  }, 900_000);

  it('counts the unpromoted rolling update against the security deadline on production: OK within it, CRITICAL and alerted past it', async () => {
    const web1 = fleet.host('web1');
    const pending = (await web1.ssh('cat /var/lib/upkeep/updates/pending')).stdout;
    expect(pending).toMatch(/^upkeep-demo 1\.2-1 \d+ security$/m);
    const check = (now: number) => web1.ssh(`UPKEEP_NOW=${now} /usr/local/lib/upkeep/run-check.sh /etc/upkeep/checks/web1-security-updates.env`);
    const now = Math.floor(Date.now() / 1000);
    expect((await check(now)).stdout).toMatch(/^web1-security-updates: ok: OK: 1 security fix\(es\) pending, oldest upkeep-demo 1\.2-1 for \d+m of the 86400s deadline/);
    const late = await check(now + DEADLINE_SECONDS + 3600);
    expect(late.stdout).toMatch(/^web1-security-updates: critical: CRITICAL: security fix upkeep-demo 1\.2-1 pending for 2[45]h\d+m, past the 86400s deadline \(1 pending\)/);
    const lateAlert = Date.now() + 60_000;
    while (!alerts.some((a) => a.host === 'web1' && a.severity === 'critical') && Date.now() < lateAlert) await new Promise((r) => setTimeout(r, 500));
    expect(alerts.find((a) => a.host === 'web1' && a.severity === 'critical')?.message).toContain('past the 86400s deadline');
  }, 900_000);
  it('takes an update that needs a new package (a library transition) through staging too: the clock sees it, and production gets the new package at the version staging ran', async () => {
    const web1 = fleet.host('web1');
    await repo.publish({ name: 'upkeep-lib', version: '1.0-1', suite: ROLLING_SUITE });
    await repo.publish({ name: 'upkeep-demo', version: '1.3-1', suite: ROLLING_SUITE, depends: 'upkeep-lib (>= 1.0-1)' });
    // Production's own run still counts the update as pending, though a plain upgrade holds it back.
    const firstSeen = /^upkeep-demo 1\.2-1 (\d+) security$/m.exec((await web1.ssh('cat /var/lib/upkeep/updates/pending')).stdout)?.[1];
    expect(firstSeen).toBeDefined();
    expect(await fireTimer(web1, 'upkeep-security-updates')).toBe('success');
    expect((await web1.ssh('cat /var/lib/upkeep/updates/pending')).stdout).toMatch(new RegExp(`^upkeep-demo 1\\.3-1 ${firstSeen} security$`, 'm'));

    const run = await update('security', async (progress) => {
      // While staging soaks, the library moves on: 1.1-1 is published.
      const deadline = Date.now() + 600_000;
      while (!progress().includes('soak: watching staging') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      await repo.publish({ name: 'upkeep-lib', version: '1.1-1', suite: ROLLING_SUITE });
    });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.promoted?.packages.map((p) => `${p.name} ${p.version}`)).toEqual(['upkeep-demo 1.3-1', 'upkeep-lib 1.0-1']);
    expect(await versions('upkeep-demo')).toEqual({ stage1: '1.3-1', web1: '1.3-1' });
    expect(await versions('upkeep-lib')).toEqual({ stage1: '1.0-1', web1: '1.0-1' });
    // Installed as the dependency it is (apt may remove it once nothing needs it), as on staging.
    expect((await web1.ssh('apt-mark showauto upkeep-lib')).stdout.trim()).toBe('upkeep-lib');
    // Nothing is pending any more but the newer library staging has not run through a wave.
    expect((await web1.ssh('cat /var/lib/upkeep/updates/pending')).stdout).not.toMatch(/^upkeep-demo /m);
  }, 900_000);
});
