// The compiled units of one host, installed on a real Debian 12 host (a systemd-nspawn container
// booting systemd) and run by systemd itself: sandboxing, ExecCondition and the runtime programs
// are exercised as they would be in production.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostDesiredState } from '../../lib/compile/desired-state.ts';
import { compileHost } from '../../lib/compile/host.ts';
import type { Weekday } from '../../lib/policy/model.ts';
import type { ResolvedHost } from '../../lib/policy/resolved.ts';
import { FLEET_HOOK_TIMEOUT_MS, FLEET_TEST_TIMEOUT_MS, fleetAvailable, startFleet, type TestFleet, type TestHost } from '../fleet/testbed.ts';
import { resolvedFleet, sundayWindow } from '../fixtures/resolved-fleet.ts';

const WEEKDAYS: readonly Weekday[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/** web-staging with a local repository (no backup host here) and a window that is surely closed now: it opens tomorrow. */
function hostUnderTest(): { state: HostDesiredState; host: ResolvedHost } {
  const fleet = resolvedFleet();
  const base = fleet.hosts.find((h) => h.name === 'web-staging')!;
  const today = new Intl.DateTimeFormat('en-US', { timeZone: 'Europe/Berlin', weekday: 'short' }).format(Date.now()).toLowerCase().slice(0, 3);
  const tomorrow = WEEKDAYS[(WEEKDAYS.indexOf(today as Weekday) + 1) % 7];
  const host: ResolvedHost = {
    ...base,
    updates: { ...base.updates!, window: { ...sundayWindow, days: [tomorrow], onCalendar: [sundayWindow.onCalendar[0].replace('Sun', tomorrow[0].toUpperCase() + tomorrow.slice(1))] } },
    backups: { ...base.backups!, repository: '/srv/backup/repo', repositoryHost: undefined, paths: ['/etc'] },
  };
  return { state: compileHost(resolvedFleet([host]), host), host };
}

/** Writes the desired state's files (secrets get stand-in values) the way the applier leaves them. */
function installScript(state: HostDesiredState): string {
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const lines = state.files.map((f) => {
    const content = Buffer.from(f.content ?? 'stand-in secret\n').toString('base64');
    return `mkdir -p "$(dirname ${q(f.path)})" && echo ${content} | base64 -d > ${q(f.path)} && chmod ${f.mode} ${q(f.path)}`;
  });
  return `set -e\n${lines.join('\n')}\nsystemctl daemon-reload\nsystemctl enable --now ${state.units.join(' ')}\n`;
}

describe.skipIf(!fleetAvailable('compiled units on a real systemd host'))('compiled units on a real Debian 12 systemd host', () => {
  let fleet: TestFleet;
  let vm: TestHost;
  const { state } = hostUnderTest();
  const run = async (command: string) => {
    const r = await vm.ssh(command);
    return { ...r, out: `${r.stdout}${r.stderr}` };
  };

  beforeAll(async () => {
    fleet = await startFleet(['web-staging']);
    vm = fleet.host('web-staging');
    const install = await vm.ssh('sh -s', { input: installScript(state) });
    expect(install.stderr.replace(/^Created symlink .*\n/gm, '')).toBe('');
    expect(install.exitCode).toBe(0);
  }, FLEET_HOOK_TIMEOUT_MS);
  afterAll(() => fleet?.stop(), FLEET_HOOK_TIMEOUT_MS);

  it('enables and starts every timer', { timeout: FLEET_TEST_TIMEOUT_MS }, async () => {
    const r = await run(`systemctl is-active ${state.units.join(' ')}`);
    expect(r.stdout.trim().split('\n')).toEqual(state.units.map(() => 'active'));
  });

  it('runs checks inside their sandbox and records their state', { timeout: FLEET_TEST_TIMEOUT_MS }, async () => {
    const r = await run('systemctl start upkeep-check-web-staging-disk.service upkeep-check-web-staging-failed-units.service && cat /var/lib/upkeep/checks/web-staging-disk /var/lib/upkeep/checks/web-staging-failed-units /var/lib/upkeep/checks/web-staging-failed-units.message');
    expect(r.exitCode).toBe(0);
    // since: when the check started passing (upkeep status reports it); then the last message.
    expect(r.stdout).toMatch(/^(failures=0\nsuccesses=1\nalerted=0\nseverity=ok\nsince=\d{10}\nfailing_since=0\nalerted_severity=\nnotified=\nroutes_told=1\n){2}OK: no failed units\n$/);
  });

  it('skips routine updates outside the window instead of running or failing them', { timeout: FLEET_TEST_TIMEOUT_MS }, async () => {
    await run('systemctl start upkeep-routine-updates.service');
    const r = await run('systemctl show -p Result upkeep-routine-updates.service; systemctl is-failed upkeep-routine-updates.service; journalctl -u upkeep-routine-updates.service --no-pager');
    expect(r.stdout).toContain("Skipped due to 'exec-condition'");
    // Which of in-window.sh's two reasons depends on the hour: outside the window's hours, or
    // within them on a day it does not open (between 02:00 and 04:00 Berlin time, today).
    expect(r.stdout).toMatch(/is outside the maintenance window|the maintenance window does not open on \d{4}-\d{2}-\d{2}/);
    expect(r.stdout).toMatch(/^Result=exec-condition\ninactive$/m);
  });

  it('backs up, drills a restore, applies retention and checks the repository under the sandbox', { timeout: FLEET_TEST_TIMEOUT_MS }, async () => {
    const r = await run(
      'systemctl start upkeep-backup.service && systemctl start upkeep-restore-drill.service upkeep-backup-forget.service upkeep-backup-check.service && cut -d" " -f2- /var/lib/upkeep/backup/backup.status /var/lib/upkeep/backup/drill.status /var/lib/upkeep/backup/forget.status /var/lib/upkeep/backup/check.status',
    );
    expect(r.out).not.toContain('Failed');
    expect(r.stdout).toBe('ok snapshot saved\nok restored and verified 20 files\nok retention applied\nok read back 5% of the data\n');
  });

  it('installs security updates with the security-only configuration, without rebooting', { timeout: FLEET_TEST_TIMEOUT_MS }, async () => {
    const r = await run('systemctl start upkeep-security-updates.service; systemctl is-failed upkeep-security-updates.service; journalctl -u upkeep-security-updates.service --no-pager');
    expect(r.stdout).toMatch(/^inactive$/m);
    expect(r.stdout).toContain('Allowed origins are: origin=Debian,archive=bookworm-security, origin=Debian,codename=bookworm-security,label=Debian-Security');
  });
});
