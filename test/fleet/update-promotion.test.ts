// `upkeep update` on real hosts with real packages: a local Debian repository (deb-repo.ts) serves
// a regular and a security suite; stage1 is staging, web1 and web2 production (batches of 1).
// Staging's maintenance window is open during the test, production's windows are closed.
// The tests build on each other in order, like successive days of one fleet.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { programsAvailable } from '../programs.ts';
import { applyPlan } from './apply-helpers.ts';
import { startDebRepo, type DebRepo } from './deb-repo.ts';
import { runCommand } from './run-command.ts';
import { FLEET_HOOK_TIMEOUT_MS, fleetAvailable, startFleet, type TestFleet } from './testbed.ts';
import { runUpdateWave, type UpdateRun } from './update-run.ts';

const root = join(import.meta.dirname, '..', '..');
const HOSTS = ['stage1', 'web1', 'web2'];
const SOAK_SECONDS = 20;
const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

const available = fleetAvailable('the update promotion tests (test/fleet/update-promotion.test.ts)') && programsAvailable('the update promotion tests', ['dpkg-deb']);

/** "HH:MM" UTC of now plus `minutes` (wrapping around midnight), for daily windows. */
function clock(minutes: number): string {
  const now = new Date();
  const total = (((now.getUTCHours() * 60 + now.getUTCMinutes() + minutes) % 1440) + 1440) % 1440;
  return `${String(Math.floor(total / 60)).padStart(2, '0')}:${String(total % 60).padStart(2, '0')}`;
}

/** The VEVENT of `host` in calendar.ics as property -> value (unfolded, first occurrence). */
function calendarEvent(feed: string, host: string): Record<string, string> {
  const lines = feed.replace(/\r\n /g, '').split('\r\n');
  const start = lines.findIndex((l, i) => l.startsWith(`UID:window-${host}@`) && lines[i - 1] === 'BEGIN:VEVENT');
  expect(start, `no event for ${host}`).toBeGreaterThan(0);
  const props: Record<string, string> = {};
  for (const line of lines.slice(start, lines.indexOf('END:VEVENT', start))) {
    const at = line.search(/[:;]/);
    props[line.slice(0, at)] ??= line.slice(at + 1);
  }
  return props;
}

describe.skipIf(!available)('upkeep update on a real fleet with a real Debian repository', () => {
  let fleet: TestFleet;
  let repo: DebRepo;
  let work: string;
  let planDir: string;
  let policy: any;
  let receiver: Server;
  const alerts: { host: string; check: string; severity: string; message: string }[] = [];
  let runs = 0;

  async function versions(pkg: string): Promise<Record<string, string>> {
    const entries = await Promise.all(
      HOSTS.map(async (name) => [name, (await fleet.host(name).ssh(`dpkg-query -W -f '\${Version}' ${pkg}`)).stdout.trim()] as const),
    );
    return Object.fromEntries(entries);
  }

  /** Runs the host's security timer's service now; its exit code (its journal is printed when it failed). */
  async function securityTimerRun(name: string): Promise<number> {
    const host = fleet.host(name);
    const run = await host.ssh('systemctl start upkeep-security-updates.service', { timeoutMs: 600_000 });
    if (run.exitCode !== 0) console.log((await host.ssh('journalctl -u upkeep-security-updates.service --no-pager | tail -40')).stdout);
    return run.exitCode;
  }

  /** `upkeep update KIND PLAN_DIR`, in this process; `whileRunning` sees its progress text as it grows. */
  async function update(kind: 'security' | 'routine', whileRunning?: (progress: () => string) => Promise<void>): Promise<UpdateRun> {
    runs += 1;
    return runUpdateWave({ kind, planDir, identityFile: fleet.identityFile, work, run: runs }, whileRunning);
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'upkeep-update-test-'));
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
    repo = await startDebRepo();
    // What every host runs before the tests: the packages the fixes are for, from the release.
    await repo.publish({ name: 'upkeep-demo', version: '1.0-1', suite: 'bookworm' });
    await repo.publish({ name: 'upkeep-kernel', version: '1.0-1', suite: 'bookworm' });
    await repo.publish({
      name: 'upkeep-web',
      version: '1.0-1',
      suite: 'bookworm',
      files: { '/lib/systemd/system/upkeep-web.service': '[Unit]\nDescription=demo web service\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n' },
      postinst: 'systemctl daemon-reload || true\nsystemctl enable --now upkeep-web.service || true',
    });
    fleet = await startFleet(HOSTS);
    await Promise.all(
      HOSTS.map(async (name) => {
        const host = fleet.host(name);
        await repo.useOn(host);
        const installed = await host.ssh('apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get install -y -q upkeep-demo upkeep-kernel upkeep-web', { timeoutMs: 600_000 });
        if (installed.exitCode !== 0) throw new Error(`${name}: ${installed.stderr}`);
      }),
    );
    const port = (receiver.address() as AddressInfo).port;
    policy = {
      name: 'updates',
      defaults: {
        updates: {
          // Production's window: closed during the test (it opens two hours from now, daily).
          window: { every: 'week', days: DAYS, start: clock(120), duration: '1h' },
          security: { deadline: '24h', checkEvery: '1h' },
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
        production: { after: ['staging'], soak: '5s', batchSize: 1 },
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
    // day away; the timer stays active, as the health gate requires.
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

  it('promotes a security fix: staging installs it, production gets exactly that version, even when a newer one is published while staging soaks', async () => {
    const published = await repo.publish({ name: 'upkeep-demo', version: '1.0-1+deb12u1', suite: 'bookworm-security' });
    let newer: Date | undefined;
    const run = await update('security', async (progress) => {
      // While staging soaks, the archive moves on: deb12u2 is published.
      const deadline = Date.now() + 600_000;
      while (!progress().includes('soak: watching staging') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      newer = await repo.publish({ name: 'upkeep-demo', version: '1.0-1+deb12u2', suite: 'bookworm-security' });
    });
    const done = new Date();
    expect(run.exitCode, run.stderr).toBe(0);
    expect(newer).toBeDefined();
    expect(run.promoted?.packages).toEqual([{ name: 'upkeep-demo', version: '1.0-1+deb12u1', kind: 'security', class: 'small', ageSeconds: expect.any(Number) }]);
    expect(await versions('upkeep-demo')).toEqual({ stage1: '1.0-1+deb12u1', web1: '1.0-1+deb12u1', web2: '1.0-1+deb12u1' });
    // A small fix goes to production at once, outside its window.
    const promoteSteps = run.journal.entries.filter((e) => e.step === 'promote-security').map((e) => [e.host, e.result]);
    expect(promoteSteps).toEqual([['web1', 'ok'], ['web2', 'ok']]);
    const staged = run.journal.entries.findIndex((e) => e.host === 'stage1' && e.step === 'health-gate');
    const firstPromotion = run.journal.entries.findIndex((e) => e.step === 'promote-security');
    expect(staged).toBeGreaterThan(-1);
    expect(firstPromotion).toBeGreaterThan(staged);
    expect(run.journal.entries.find((e) => e.step === 'soak')?.result).toBe('ok');
    console.log(`fix published -> installed on every production host: ${((done.getTime() - published.getTime()) / 1000).toFixed(1)}s (soak ${SOAK_SECONDS}s, 1 staging batch, 2 production batches)`);

    // The production hosts' own timer run installs nothing unpromoted: deb12u2 waits.
    expect(await securityTimerRun('web1')).toBe(0);
    expect((await versions('upkeep-demo')).web1).toBe('1.0-1+deb12u1');
  }, 900_000);

  it('leaves a disruptive fix (it asks for a reboot) for production\'s window, then installs exactly the promoted version there', async () => {
    await repo.publish({
      name: 'upkeep-kernel',
      version: '1.0-1+deb12u1',
      suite: 'bookworm-security',
      postinst: 'touch /var/run/reboot-required\necho upkeep-kernel >> /var/run/reboot-required.pkgs',
    });
    const calendarBefore = readFileSync(join(planDir, 'calendar.ics'), 'utf8');
    const run = await update('security');
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.promoted?.packages.find((p) => p.name === 'upkeep-kernel')).toMatchObject({ version: '1.0-1+deb12u1', class: 'reboot' });
    expect(await versions('upkeep-kernel')).toEqual({ stage1: '1.0-1+deb12u1', web1: '1.0-1', web2: '1.0-1' });
    expect(run.stderr).toContain('web2: waits for its maintenance window: upkeep-kernel 1.0-1+deb12u1 reboot');
    // The customers' calendar, rewritten by the wave from what it read on the hosts: stage1 installed
    // the kernel and has its reboot pending (its event changed: SEQUENCE one up, the same UID);
    // production deferred it and has none, so their events stay as they were.
    expect((await fleet.host('stage1').ssh('test -e /var/run/reboot-required && echo pending')).stdout.trim()).toBe('pending');
    const calendar = readFileSync(join(planDir, 'calendar.ics'), 'utf8');
    expect(run.stderr).toContain(`calendar: ${join(planDir, 'calendar.ics')} (1 host(s) with a reboot pending)`);
    expect(calendarEvent(calendar, 'stage1')).toMatchObject({ UID: 'window-stage1@updates.upkeep', SUMMARY: 'Maintenance window: stage1 (reboot pending)', SEQUENCE: String(Number(calendarEvent(calendarBefore, 'stage1').SEQUENCE) + 1) });
    expect(calendarEvent(calendar, 'stage1').DTSTART).toBe(calendarEvent(calendarBefore, 'stage1').DTSTART);
    for (const name of ['web1', 'web2']) {
      expect(calendarEvent(calendar, name).SUMMARY).toBe(`Maintenance window: ${name}`);
      expect(calendarEvent(calendar, name).SEQUENCE).toBe(calendarEvent(calendarBefore, name).SEQUENCE);
    }

    // A newer kernel appears; web2's window opens (the routine timer's run, its clock moved into
    // the window): it installs the promoted version, not the newest.
    await repo.publish({ name: 'upkeep-kernel', version: '1.0-1+deb12u2', suite: 'bookworm-security', postinst: 'touch /var/run/reboot-required' });
    const inWindow = Math.floor(Date.now() / 1000) + 2 * 3600 + 5 * 60;
    const windowRun = await fleet.host('web2').ssh(`UPKEEP_NOW=${inWindow} /usr/local/lib/upkeep/updates.sh routine`, { timeoutMs: 600_000 });
    expect(windowRun.exitCode, windowRun.stderr).toBe(0);
    expect(windowRun.stdout).toContain('installed upkeep-kernel 1.0-1+deb12u1');
    expect((await versions('upkeep-kernel')).web2).toBe('1.0-1+deb12u1');
    // Outside the window the same run installs nothing disruptive.
    const outside = await fleet.host('web1').ssh('/usr/local/lib/upkeep/updates.sh routine', { timeoutMs: 600_000 });
    expect(outside.stdout).toContain('deferred upkeep-kernel 1.0-1+deb12u1 reboot');
    expect((await versions('upkeep-kernel')).web1).toBe('1.0-1');
  }, 900_000);

  it('takes routine updates only on a routine wave, through staging inside its window', async () => {
    await repo.publish({ name: 'upkeep-demo', version: '2.0-1', suite: 'bookworm' });
    const security = await update('security');
    expect(security.exitCode, security.stderr).toBe(0);
    expect(Object.values(await versions('upkeep-demo')).some((v) => v === '2.0-1')).toBe(false);

    const routine = await update('routine');
    expect(routine.exitCode, routine.stderr).toBe(0);
    expect(routine.journal.entries.find((e) => e.host === 'stage1' && e.step === 'install-routine')?.result).toBe('ok');
    expect(await versions('upkeep-demo')).toEqual({ stage1: '2.0-1', web1: '2.0-1', web2: '2.0-1' });
  }, 900_000);

  it("never promotes a fix that breaks a health check on staging, though staging's own timer installed it longer ago than the soak, and alerts", async () => {
    await repo.publish({
      name: 'upkeep-web',
      version: '1.0-1+deb12u1',
      suite: 'bookworm-security',
      files: { '/lib/systemd/system/upkeep-web.service': '[Unit]\nDescription=demo web service, broken\n[Service]\nExecStart=/bin/false\n[Install]\nWantedBy=multi-user.target\n' },
      postinst: 'systemctl daemon-reload || true\nsystemctl restart upkeep-web.service || true',
    });
    const before = alerts.length;
    // As on a real fleet: staging's hourly security run installs the fix before the pipeline's
    // wave comes, which then finds nothing new to install on staging and the soak long over.
    await securityTimerRun('stage1');
    expect((await versions('upkeep-web')).stage1).toBe('1.0-1+deb12u1');
    await new Promise((r) => setTimeout(r, (SOAK_SECONDS + 2) * 1000));
    const run = await update('security');
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toContain('nothing is promoted');
    expect(run.promoted).toBeUndefined();
    expect(run.journal.entries.filter((e) => e.step === 'promote-security')).toEqual([]);
    expect(await versions('upkeep-web')).toEqual({ stage1: '1.0-1+deb12u1', web1: '1.0-1', web2: '1.0-1' });
    // The failed-units check on stage1 ran in the gate and alerted (threshold 1).
    const deadline = Date.now() + 180_000;
    while (!alerts.slice(before).some((a) => a.host === 'stage1' && a.severity !== 'ok') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1000));
    expect(alerts.slice(before).find((a) => a.host === 'stage1' && a.severity !== 'ok')).toBeDefined();

    // Production sees the fix pending (its hourly security run records it): fine within the
    // deadline, CRITICAL past it, and its run installs nothing.
    expect(await securityTimerRun('web1')).toBe(0);
    expect((await versions('upkeep-web')).web1).toBe('1.0-1');
    const pending = (await fleet.host('web1').ssh('cat /var/lib/upkeep/updates/pending')).stdout;
    expect(pending).toMatch(/^upkeep-web 1\.0-1\+deb12u1 \d+ security$/m);
    const check = (now: number) => fleet.host('web1').ssh(`UPKEEP_NOW=${now} /usr/local/lib/upkeep/run-check.sh /etc/upkeep/checks/web1-security-updates.env`);
    const now = Math.floor(Date.now() / 1000);
    // Pending: upkeep-web's fix, and the newer kernel fix of the second test (not promoted either).
    expect((await check(now)).stdout).toMatch(/^web1-security-updates: ok: OK: 2 security fix\(es\) pending/);
    const late = await check(now + 25 * 3600);
    expect(late.stdout).toMatch(/^web1-security-updates: critical: CRITICAL: security fix upkeep-\S+ \S+ pending for 2[45]h\d+m, past the 86400s deadline \(2 pending\)/);
    const lateAlert = Date.now() + 60_000;
    while (!alerts.some((a) => a.host === 'web1' && a.severity === 'critical') && Date.now() < lateAlert) await new Promise((r) => setTimeout(r, 500));
    expect(alerts.find((a) => a.host === 'web1' && a.severity === 'critical')?.message).toContain('past the 86400s deadline');
  }, 900_000);

  it('on a rolling channel (no security archive), takes every update on a security wave, through staging', async () => {
    // Staging gets the repaired service the previous test's broken fix needed (from the archive, as staging does).
    await repo.publish({
      name: 'upkeep-web',
      version: '1.0-1+deb12u2',
      suite: 'bookworm-security',
      files: { '/lib/systemd/system/upkeep-web.service': '[Unit]\nDescription=demo web service\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n' },
      postinst: 'systemctl daemon-reload || true\nsystemctl reset-failed upkeep-web.service || true\nsystemctl restart upkeep-web.service || true',
    });
    const repaired = await fleet.host('stage1').ssh('apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get install -y -q upkeep-web && systemctl is-system-running', { timeoutMs: 600_000 });
    expect(repaired.stdout.trim().split('\n').at(-1), repaired.stderr).toBe('running');

    // The stand-in for a rolling release on these bookworm hosts: the fix comes from the regular suite.
    policy.defaults.updates.channel = 'rolling';
    writeFileSync(join(work, 'fleet.yaml'), stringify(policy));
    const rollingPlan = join(work, 'plan-rolling');
    const planned = await runCommand(join(root, 'bin', 'plan'), [join(work, 'fleet.yaml'), '--out', rollingPlan, '--base', planDir], { env: { ...process.env, NO_COLOR: '1' } });
    expect(planned.exitCode, planned.stderr).toBe(2);
    const applied = await applyPlan(fleet, rollingPlan);
    expect(applied.exitCode, applied.stderr).toBe(0);
    planDir = rollingPlan;

    await repo.publish({ name: 'upkeep-demo', version: '2.1-1', suite: 'bookworm' });
    const run = await update('security');
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.promoted?.packages.find((p) => p.name === 'upkeep-demo')).toMatchObject({ version: '2.1-1', kind: 'security', class: 'small' });
    expect(await versions('upkeep-demo')).toEqual({ stage1: '2.1-1', web1: '2.1-1', web2: '2.1-1' });
  }, 900_000);
});

