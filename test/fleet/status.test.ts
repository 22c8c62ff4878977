// `upkeep status` on real hosts: one host keeps the contract and one breaks it in each way the
// report must catch: a stale backup (stale1), a security fix pending past its deadline (secfix1),
// a failing check that alerted (failing1) and a host on an older generation than the plan
// (oldgen1). Backups, checks and alerts are real runs of the units bin/apply installed; a real
// package from a real apt repository is the pending security fix. Two things stand in for the
// passing of time, since the test cannot wait a day: the stale backup's and the pending fix's
// recorded times are moved back. The HTML page is loaded in a real headless chromium.
// The tests build on each other in order.

import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusReport } from '../../lib/status/status-report.ts';
import { programsAvailable } from '../programs.ts';
import { applyPlan } from './apply-helpers.ts';
import { runCommand } from './run-command.ts';
import { FLEET_HOOK_TIMEOUT_MS, FLEET_TEST_TIMEOUT_MS, fleetAvailable, startFleet, type TestFleet } from './testbed.ts';

const root = join(import.meta.dirname, '..', '..');
const HOSTS = ['backup1', 'failing1', 'ok1', 'oldgen1', 'secfix1', 'stale1'];
const PASSWORD_ENV = 'TEST_RESTIC_PASSWORD';
const EXEMPT = 'A throwaway test container: only its status is under test here.';
const FIX = 'upkeep-status-fix';
/** What a tampered host writes where a check's message goes. */
const HOSTILE = `<img src=x onerror="document.title='pwned'"><script>document.documentElement.setAttribute('data-pwned','1')</script>`;

function policy(fleet: TestFleet, hookUrl: string, extraOnOldgen: boolean): string {
  const host = (name: string, lines: string[]) => {
    const h = fleet.host(name);
    return [`  ${name}:`, `    group: ${name === 'ok1' ? 'staging' : 'production'}`, `    address: ${h.address}`, `    hostKey: ${h.hostKey}`, ...lines];
  };
  const noBackups = ['    exempt:', `      backups: "${EXEMPT}"`];
  const backupChecks = ['    monitoring:', '      checks:', '        backup-freshness: { kind: backup-freshness, maxAge: 26h }'];
  return [
    'name: statustest',
    'defaults:',
    '  updates:',
    '    window: { every: week, days: [sun], start: "02:00", duration: 2h, timeZone: UTC }',
    '    security: { deadline: 24h, checkEvery: 1h }',
    '    reboot: when-needed',
    '  backups:',
    '    schedule: "*-*-* 01:30:00"',
    '    retention: { daily: 7 }',
    '    paths: ["/srv/data"]',
    '    repository: { host: backup1 }',
    `    password: { env: ${PASSWORD_ENV} }`,
    '    check: { schedule: "Sun *-*-* 05:00:00", readDataSubset: 5% }',
    '    drill: { schedule: "Sat *-*-* 06:00:00" }',
    '  monitoring:',
    '    interval: 1m',
    '    failureThreshold: 2',
    '    recoveryThreshold: 2',
    '    sla: 15m',
    '    routes:',
    `      - { name: ops, webhook: "${hookUrl}", delivery: 1m }`,
    '    checks:',
    '      failed-units: { kind: failed-units }',
    '      security-updates: { kind: security-updates }',
    'groups:',
    '  staging:',
    '    staging: true',
    '    updates: { window: { every: week, days: [sat], start: "02:00", duration: 2h, timeZone: UTC } }',
    '  production: { after: [staging] }',
    'hosts:',
    ...host('backup1', ['    roles: [backup]', '    exempt:', `      updates: "${EXEMPT}"`, `      monitoring: "${EXEMPT}"`, `      backups: "It holds the other hosts' repositories."`]),
    ...host('ok1', backupChecks),
    ...host('stale1', backupChecks),
    ...host('secfix1', noBackups),
    ...host('failing1', noBackups),
    ...host('oldgen1', [...noBackups, ...(extraOnOldgen ? ['    monitoring:', '      checks:', '        disk-usage: { kind: disk-usage, maxPercent: 99 }'] : [])]),
    '',
  ].join('\n');
}

/** A .deb of `version` with one file, built by dpkg-deb. */
function buildDeb(dir: string, version: string): string {
  const pkg = join(dir, `build-${version}`);
  mkdirSync(join(pkg, 'DEBIAN'), { recursive: true });
  mkdirSync(join(pkg, 'usr/share/doc', FIX), { recursive: true });
  writeFileSync(join(pkg, 'usr/share/doc', FIX, 'README'), `version ${version}\n`);
  writeFileSync(join(pkg, 'DEBIAN/control'), `Package: ${FIX}\nVersion: ${version}\nArchitecture: all\nMaintainer: upkeep tests <tests@example.invalid>\nDescription: a package whose new version is a security fix\n`);
  const deb = join(dir, `${FIX}_${version}_all.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '--build', pkg, deb], { stdio: 'pipe' });
  return deb;
}

/** A flat apt repository in `dir` whose one suite is a security suite holding `deb`. */
function publishSecuritySuite(dir: string, deb: string, version: string): void {
  const data = readFileSync(deb);
  const name = deb.slice(dir.length + 1);
  const packages = `Package: ${FIX}\nVersion: ${version}\nArchitecture: all\nMaintainer: upkeep tests <tests@example.invalid>\nFilename: ./${name}\nSize: ${data.length}\nSHA256: ${createHash('sha256').update(data).digest('hex')}\nDescription: a package whose new version is a security fix\n\n`;
  writeFileSync(join(dir, 'Packages'), packages);
  const sum = createHash('sha256').update(packages).digest('hex');
  writeFileSync(
    join(dir, 'Release'),
    `Origin: upkeep-test\nLabel: upkeep-test-security\nSuite: bookworm-security\nCodename: bookworm-security\nDate: ${new Date().toUTCString()}\nArchitectures: all\nSHA256:\n ${sum} ${Buffer.byteLength(packages)} Packages\n`,
  );
}

describe.skipIf(!fleetAvailable('the status tests (test/fleet/status.test.ts)') || !programsAvailable('test/fleet/status.test.ts', ['chromium', 'dpkg-deb']))('upkeep status on real hosts', () => {
  let fleet: TestFleet;
  let work: string;
  let server: Server;
  let base: string;
  const alerts: { path: string; body: string }[] = [];
  let planOne: string;
  let planTwo: string;
  /** What failing1's failed-units check sent (the checks' own timers run every minute meanwhile). */
  const failingAlerts = () => alerts.map((a) => JSON.parse(a.body)).filter((a) => a.host === 'failing1' && a.check === 'failed-units');

  const status = (plan: string, args: string[] = []) =>
    runCommand(join(root, 'bin', 'upkeep'), ['status', plan, '--identity', fleet.identityFile, '--policy', join(work, 'fleet-2.yaml'), ...args], { env: { ...process.env, NO_COLOR: '1' }, timeoutMs: 300_000 });

  async function plan(file: string, out: string, baseDir?: string): Promise<void> {
    const r = await runCommand(join(root, 'bin', 'plan'), [file, '--out', out, ...(baseDir ? ['--base', baseDir] : [])], { env: { ...process.env, NO_COLOR: '1' } });
    expect(r.exitCode, `${r.stdout}${r.stderr}`).toBe(2);
  }

  async function sh(host: string, command: string): Promise<string> {
    const r = await fleet.host(host).ssh(command, { timeoutMs: 300_000 });
    expect(r.exitCode, `${host}: ${command}\n${r.stdout}${r.stderr}`).toBe(0);
    return r.stdout;
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'upkeep-status-test-'));
    process.env[PASSWORD_ENV] = randomBytes(18).toString('base64');
    mkdirSync(join(work, 'repo'));
    // The alert receiver and the apt repository, on the loopback every test host shares.
    server = createServer((req, res) => {
      if (req.method === 'POST') {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          alerts.push({ path: req.url ?? '', body });
          res.end('ok');
        });
        return;
      }
      try {
        const file = join(work, 'repo', (req.url ?? '/').replace(/\.\.+/g, ''));
        res.end(readFileSync(file));
      } catch {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    fleet = await startFleet(HOSTS);
    writeFileSync(join(work, 'fleet-1.yaml'), policy(fleet, `${base}/hook`, false));
    writeFileSync(join(work, 'fleet-2.yaml'), policy(fleet, `${base}/hook`, true));
  }, FLEET_HOOK_TIMEOUT_MS);
  afterAll(async () => {
    delete process.env[PASSWORD_ENV];
    await fleet?.stop();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    if (work) rmSync(work, { recursive: true, force: true });
  }, FLEET_HOOK_TIMEOUT_MS);

  it('applies the first plan to every host', async () => {
    planOne = join(work, 'plan-1');
    await plan(join(work, 'fleet-1.yaml'), planOne);
    const run = await applyPlan(fleet, planOne);
    expect(run.exitCode, run.stderr).toBe(0);
    // The next plan changes oldgen1 only (a new check): it stays on the first plan's generation.
    planTwo = join(work, 'plan-2');
    await plan(join(work, 'fleet-2.yaml'), planTwo, planOne);
    const one = JSON.parse(readFileSync(join(planOne, 'plan.json'), 'utf8'));
    const two = JSON.parse(readFileSync(join(planTwo, 'plan.json'), 'utf8'));
    expect(HOSTS.filter((h) => one.hosts[h].generation !== two.hosts[h].generation)).toEqual(['oldgen1']);
  }, FLEET_TEST_TIMEOUT_MS);

  it('runs real backups, a repository check and a restore drill; a failing unit alerts; a security fix is pending', async () => {
    for (const host of ['ok1', 'stale1']) {
      await sh(host, 'mkdir -p /srv/data && head -c 4096 /dev/urandom > /srv/data/file.bin && systemctl start upkeep-backup.service');
    }
    await sh('ok1', 'systemctl start upkeep-backup-check.service && systemctl start upkeep-restore-drill.service');
    // stale1's last backup, as if the backup timer had stopped three days ago.
    await sh('stale1', 'read -r at rest < /var/lib/upkeep/backup/backup.status && echo "$((at - 259200)) $rest" > /var/lib/upkeep/backup/backup.status');

    // failing1: a failed unit, seen by two runs of its failed-units check (the threshold): one alert.
    await sh('failing1', 'systemd-run --unit=status-test-broken --service-type=oneshot /bin/false || true');
    for (let i = 0; i < 2; i += 1) await sh('failing1', 'systemctl start upkeep-check-failing1-failed-units.service');
    expect(failingAlerts()).toMatchObject([{ status: 'firing', severity: 'critical' }]);

    // secfix1: version 1.0 installed, 1.1 published in a security suite of a real apt repository.
    const v1 = buildDeb(join(work, 'repo'), '1.0');
    const v2 = buildDeb(join(work, 'repo'), '1.1');
    publishSecuritySuite(join(work, 'repo'), v2, '1.1');
    await fleet.host('secfix1').ssh(`base64 -d > /root/fix.deb && dpkg -i /root/fix.deb`, { input: readFileSync(v1).toString('base64') });
    await sh('secfix1', `echo "deb [trusted=yes] ${base}/ ./" > /etc/apt/sources.list.d/upkeep-test.list && apt-get -q update -o Dir::Etc::sourcelist=/etc/apt/sources.list.d/upkeep-test.list -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0`);
    expect(await sh('secfix1', 'apt-get -s -o Debug::NoLocking=1 dist-upgrade | grep "^Inst "')).toMatch(new RegExp(`^Inst ${FIX} \\[1\\.0\\] \\(1\\.1 .*security`));

    // secfix1's security run (a production host: it installs only promoted versions) records the
    // fix as pending and when it first saw it.
    await sh('secfix1', 'systemctl start upkeep-security-updates.service');

    // Every host's own checks run now, as their timers would.
    for (const host of ['ok1', 'stale1', 'secfix1', 'failing1', 'oldgen1']) {
      const checks = ['failed-units', 'security-updates', ...(host === 'ok1' || host === 'stale1' ? ['backup-freshness'] : [])];
      await sh(host, checks.map((c) => `systemctl start upkeep-check-${host}-${c}.service`).join(' && '));
    }
    expect(await sh('secfix1', 'cat /var/lib/upkeep/checks/security-pending')).toMatch(/^\d+ 1\n$/);
    // The fix was first seen 30 h ago, past the 24 h deadline: the host's record says so, and its
    // check runs again.
    await sh('secfix1', "awk '{ $3 = $3 - 108000; print }' /var/lib/upkeep/updates/pending > /var/lib/upkeep/updates/pending.new && mv /var/lib/upkeep/updates/pending.new /var/lib/upkeep/updates/pending");
    await sh('secfix1', 'systemctl start upkeep-check-secfix1-security-updates.service');
    // stale1's freshness check sees the stale backup too (its timer would within a minute).
    await sh('stale1', 'systemctl start upkeep-check-stale1-backup-freshness.service');
    // A tampered host: what it records as the window its routine updates ran in is markup meant
    // for the status page.
    await fleet.host('failing1').ssh('cat > /var/lib/upkeep/routine-last-opening', { input: `${HOSTILE}\n` });
  }, FLEET_TEST_TIMEOUT_MS);

  it('reports each host out of contract in its own way, ok1 in contract, and exits 2', async () => {
    const run = await status(planTwo, ['--json', '--html', join(work, 'status.html')]);
    expect(run.exitCode, run.stderr).toBe(2);
    const report = JSON.parse(run.stdout) as StatusReport;
    const byHost = Object.fromEntries(report.hosts.map((h) => [h.host, h]));
    const outCells = report.hosts.flatMap((h) => (['generation', 'updates', 'backups', 'monitoring'] as const).filter((i) => h[i].state === 'out').map((i) => `${h.host}:${i}`));
    expect(outCells.sort()).toEqual(['failing1:monitoring', 'oldgen1:generation', 'secfix1:monitoring', 'secfix1:updates', 'stale1:backups', 'stale1:monitoring']);
    expect(report.summary).toEqual({ hosts: 6, in_contract: 2, out_of_contract: 4, unreachable: 0 });

    const ok1 = byHost.ok1!;
    expect(ok1.in_contract, ok1.problems.join('\n')).toBe(true);
    expect(ok1.backups.snapshot).toMatchObject({ state: 'ok', result: 'ok', detail: 'snapshot saved' });
    expect(ok1.backups.repository_check).toMatchObject({ state: 'ok', result: 'ok' });
    expect(ok1.backups.restore_drill).toMatchObject({ state: 'ok', result: 'ok' });
    expect(ok1.backups.snapshot.age_seconds).toBeLessThan(3600);
    expect(ok1.updates.security).toMatchObject({ state: 'ok', pending: 0 });
    expect(ok1.monitoring.checks.map((c) => [c.name, c.state, c.severity])).toEqual([['backup-freshness', 'ok', 'ok'], ['failed-units', 'ok', 'ok'], ['security-updates', 'ok', 'ok']]);

    expect(byHost.stale1!.problems).toEqual(['last backup snapshot is 3 d old (limit 26 h)', expect.stringMatching(/^check backup-freshness is critical since \d+ (s|min) ago$/)]);
    expect(byHost.stale1!.monitoring.checks.find((c) => c.name === 'backup-freshness')!.message).toMatch(/^CRITICAL: the last backup is 72h old/);
    expect(byHost.secfix1!.updates.security).toMatchObject({ state: 'out', pending: 1, deadline_seconds: 86400 });
    expect(byHost.secfix1!.updates.security.age_seconds).toBeGreaterThanOrEqual(108000);
    expect(byHost.secfix1!.problems).toContain('1 security fix(es) pending for 30 h (deadline 24 h)');
    const failed = byHost.failing1!.monitoring.checks.find((c) => c.name === 'failed-units')!;
    expect(failed).toMatchObject({ state: 'out', severity: 'critical', alerts_in_period: 1, sla_seconds: 900 });
    expect(failed.message).toMatch(/^CRITICAL: failed units: status-test-broken\.service/);
    expect(byHost.failing1!.updates.routine).toMatchObject({ state: 'ok', window_opening: HOSTILE, inside_window: true });
    // secfix1's security-updates check is the deadline's clock: CRITICAL once the fix is older than the deadline.
    expect(byHost.secfix1!.monitoring.checks.find((c) => c.name === 'security-updates')).toMatchObject({ state: 'out', severity: 'critical' });
    // The alert went out on the second failing run, one run after the first.
    expect(failed.time_to_alert_seconds).toBeGreaterThanOrEqual(0);
    expect(failed.time_to_alert_seconds).toBeLessThan(900);
    const plan2 = JSON.parse(readFileSync(join(planTwo, 'plan.json'), 'utf8'));
    expect(byHost.oldgen1!.generation).toEqual({ state: 'out', host: JSON.parse(readFileSync(join(planOne, 'plan.json'), 'utf8')).hosts.oldgen1.generation, plan: plan2.hosts.oldgen1.generation });
    expect(report.windows.length).toBeGreaterThanOrEqual(5 * 5);
  }, FLEET_TEST_TIMEOUT_MS);

  it('shows the same in markdown, with the host text escaped', async () => {
    const run = await status(planTwo);
    expect(run.exitCode, run.stderr).toBe(2);
    expect(run.stdout).toContain('**4 of 6 hosts out of contract**');
    // No routine run can have happened yet (the window is on Sundays): updates are unknown, not out.
    expect(run.stdout).toContain('| stale1 | production | ok | unknown | **OUT OF CONTRACT** | **OUT OF CONTRACT** |');
    expect(run.stdout).toContain('| ok1 | staging | ok | unknown | ok | ok |');
    expect(run.stdout).not.toContain('<script>');
    expect(run.stdout).toContain('&#60;script&#62;');
  }, FLEET_TEST_TIMEOUT_MS);

  it('renders an HTML page in which chromium shows exactly those cells red and runs nothing from a host', async () => {
    const page = join(work, 'status.html');
    expect(statSync(page).size).toBeGreaterThan(1000);
    const dump = await runCommand('chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--virtual-time-budget=2000', '--dump-dom', `file://${page}`], { timeoutMs: 120_000 });
    expect(dump.exitCode, dump.stderr).toBe(0);
    const dom = dump.stdout;
    expect(dom).toContain('<table id="matrix">');
    const red = [...dom.matchAll(/<td class="state-out" data-host="([^"]+)" data-item="([^"]+)">/g)].map((m) => `${m[1]}:${m[2]}`).sort();
    expect(red).toEqual(['failing1:monitoring', 'oldgen1:generation', 'secfix1:monitoring', 'secfix1:updates', 'stale1:backups', 'stale1:monitoring']);
    expect([...dom.matchAll(/data-host="ok1" data-item="[a-z]+"/g)].length).toBe(4);
    expect(dom).not.toMatch(/<td class="state-out" data-host="ok1"/);
    // The hostile message is text on the page: no element was made from it and it ran nothing.
    expect(dom).toMatch(/^<!DOCTYPE html>\n<html lang="en"><head>/);
    expect(dom).not.toContain('data-pwned="1"');
    expect(dom).not.toMatch(/<img/i);
    expect(dom).toContain('<title>upkeep status: statustest</title>');
    expect(dom).toContain('&lt;script&gt;document.documentElement.setAttribute');
  }, FLEET_TEST_TIMEOUT_MS);

  it('reports the whole fleet in contract, exit 0, once each fault is put right', async () => {
    await sh('stale1', 'systemctl start upkeep-backup.service && systemctl start upkeep-check-stale1-backup-freshness.service');
    // Installed (by hand here, as a promotion would); the next security run records nothing pending.
    await sh('secfix1', `apt-get -q -y install ${FIX} && systemctl start upkeep-security-updates.service && systemctl start upkeep-check-secfix1-security-updates.service && test ! -e /var/lib/upkeep/checks/security-pending`);
    await sh('failing1', 'systemctl reset-failed status-test-broken.service; for i in 1 2; do systemctl start upkeep-check-failing1-failed-units.service; done');
    const run = await applyPlan(fleet, planTwo);
    expect(run.exitCode, run.stderr).toBe(0);
    await sh('oldgen1', 'systemctl start upkeep-check-oldgen1-disk-usage.service');
    const after = await status(planTwo, ['--json']);
    const report = JSON.parse(after.stdout) as StatusReport;
    expect(report.hosts.flatMap((h) => h.problems.map((p) => `${h.host}: ${p}`))).toEqual([]);
    expect(after.exitCode, after.stderr).toBe(0);
    expect(report.in_contract).toBe(true);
    // The recovery notice went out too.
    expect(failingAlerts().map((a) => a.status)).toEqual(['firing', 'resolved']);
  }, FLEET_TEST_TIMEOUT_MS);
});
