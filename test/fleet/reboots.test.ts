// Reboots the customer agreed to, on a real host: a kernel-like package (a tiny .deb whose postinst
// flags /var/run/reboot-required, as linux-image does) installed outside the maintenance window
// does not reboot the host; the pending reboot carries over and happens in the next opening, after
// that window's routine updates. And the calendar.ics that bin/plan writes is read by a real
// iCalendar library (Debian's python3-icalendar) on the host, its occurrences expanded and checked
// one by one against the host's own window gate (in-window.sh). bin/plan and bin/apply run for real.
// The tests build on each other in order.

import { objectPath } from '../../lib/plan/plan-dir.ts';
import type { PlanDocument } from '../../lib/plan/plan-format.ts';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { applyPlan } from './apply-helpers.ts';
import { runCommand } from './run-command.ts';
import { FLEET_HOOK_TIMEOUT_MS, FLEET_TEST_TIMEOUT_MS, fleetAvailable, startFleet, type TestFleet, type TestHost } from './testbed.ts';
import { buildTinyDeb, installDeb } from './tiny-deb.ts';

const root = join(import.meta.dirname, '..', '..');
const EVERY_DAY = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

/** "HH:MM" in UTC, `minutes` from now. */
function clock(minutes: number): string {
  const d = new Date(Date.now() + minutes * 60_000);
  return `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
}

// Expands the host's event of calendar.ics (argv 1, UID argv 2) with python3-icalendar and
// dateutil: the first 60 openings after DTSTART as epoch seconds, without EXDATEs, the recurrence
// taken on the wall clock of the event's zone (RFC 5545 3.3.10) and turned into instants with zoneinfo.
const EXPAND = `
import sys, datetime
from zoneinfo import ZoneInfo
from icalendar import Calendar
from dateutil.rrule import rrulestr
cal = Calendar.from_ical(open(sys.argv[1], 'rb').read())
events = [e for e in cal.walk('VEVENT') if str(e['UID']) == sys.argv[2]]
assert len(events) == 1, 'expected one event'
ev = events[0]
start = ev['DTSTART']
zone = ZoneInfo(start.params.get('TZID', 'UTC'))
local = ev.decoded('DTSTART').replace(tzinfo=None)
ex = ev.get('EXDATE')
ex = ex if isinstance(ex, list) else [ex] if ex is not None else []
skipped = {d.dt.replace(tzinfo=None) for e in ex for d in e.dts}
rule = rrulestr(ev['RRULE'].to_ical().decode(), dtstart=local)
n = 0
for occ in rule:
    if occ in skipped:
        print('skipped', int(occ.replace(tzinfo=zone).timestamp()))
        continue
    print('open', int(occ.replace(tzinfo=zone).timestamp()))
    n += 1
    if n == 60:
        break
print('duration', int(ev.decoded('DURATION').total_seconds()))
`;

describe.skipIf(!fleetAvailable('the reboot tests (test/fleet/reboots.test.ts)'))('reboots in the maintenance window on a real host', () => {
  let fleet: TestFleet;
  let host: TestHost;
  let work: string;
  let plans = 0;

  function policy(window: object) {
    return {
      name: 'reboots',
      defaults: { updates: { window, reboot: 'when-needed' } },
      groups: { staging: { staging: true } },
      hosts: {
        ns1: {
          group: 'staging',
          roles: ['dns'],
          address: host.address,
          hostKey: host.hostKey,
          exempt: { backups: 'A test host with nothing worth keeping.', monitoring: 'A test host; the test watches it.' },
        },
      },
    };
  }

  async function plan(window: object, base?: string): Promise<string> {
    plans += 1;
    writeFileSync(join(work, 'fleet.yaml'), stringify(policy(window)));
    const out = join(work, `plan-${plans}`);
    const planned = await runCommand(join(root, 'bin', 'plan'), [join(work, 'fleet.yaml'), '--out', out, ...(base ? ['--base', base] : [])], { env: { ...process.env, NO_COLOR: '1' } });
    expect(planned.exitCode, planned.stderr).toBe(2);
    return out;
  }

  const bootId = async () => (await host.ssh('cat /proc/sys/kernel/random/boot_id')).stdout.trim();

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'upkeep-reboots-test-'));
    fleet = await startFleet(['ns1'], { extraPackages: ['python3-icalendar'] });
    host = fleet.host('ns1');
    // No package archive in this test: routine updates find nothing, quickly, without the network.
    expect((await host.ssh('rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*')).exitCode).toBe(0);
  }, FLEET_HOOK_TIMEOUT_MS);
  afterAll(async () => {
    await fleet?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  }, FLEET_HOOK_TIMEOUT_MS);

  let firstPlan: string;
  let bootBefore: string;

  it('GIVEN the window opens in three hours, WHEN a kernel-like package asks for a reboot, THEN the host does not reboot', async () => {
    firstPlan = await plan({ every: 'week', days: EVERY_DAY, start: clock(180), duration: '1h' });
    const run = await applyPlan(fleet, firstPlan);
    expect(run.exitCode, run.stderr).toBe(0);
    const kernel = await buildTinyDeb({
      name: 'upkeep-test-kernel',
      version: '1.0',
      files: { '/usr/share/doc/upkeep-test-kernel/README': 'a kernel-like test package\n' },
      // What linux-image's postinst does through /usr/share/update-notifier/notify-reboot-required.
      scripts: { postinst: 'touch /var/run/reboot-required\necho upkeep-test-kernel >> /var/run/reboot-required.pkgs' },
    });
    await installDeb(host, kernel);
    expect((await host.ssh('cat /var/run/reboot-required.pkgs')).stdout).toContain('upkeep-test-kernel');
    bootBefore = await bootId();

    // What the timers would start: routine updates are skipped outside the window, the reboot refuses.
    const routine = await host.ssh('systemctl start upkeep-routine-updates.service; systemctl show -p Result --value upkeep-routine-updates.service; cat /var/lib/upkeep/routine-last-opening 2>/dev/null || echo none');
    expect(routine.stdout.trim().split('\n')).toEqual(['exec-condition', 'none']);
    const reboot = await host.ssh('systemctl start upkeep-reboot.service && journalctl -u upkeep-reboot.service -o cat --no-pager');
    expect(reboot.exitCode, reboot.stderr).toBe(0);
    await sleep(5_000);
    expect(host.reboots).toBe(0);
    expect(await bootId()).toBe(bootBefore);
    expect((await host.ssh('test -e /var/run/reboot-required && echo pending')).stdout.trim()).toBe('pending');
  }, FLEET_TEST_TIMEOUT_MS);

  it('tells customers: planned against the live host, calendar.ics marks the window "reboot pending" and bumps its SEQUENCE', async () => {
    // Planned into a copy of the first plan, so the feed it replaces is the one customers have.
    const out = join(work, 'live');
    cpSync(firstPlan, out, { recursive: true });
    const live = await runCommand(join(root, 'bin', 'plan'), [join(work, 'fleet.yaml'), '--out', out, '--live', '--identity', fleet.identityFile], { env: { ...process.env, NO_COLOR: '1' } });
    expect(live.exitCode, live.stderr).toBe(0);
    const before = readFileSync(join(firstPlan, 'calendar.ics'), 'utf8').replace(/\r\n /g, '');
    const after = readFileSync(join(out, 'calendar.ics'), 'utf8').replace(/\r\n /g, '');
    expect(before).toContain('SUMMARY:Maintenance window: ns1\r\n');
    expect(before).toContain('SEQUENCE:0\r\n');
    expect(after).toContain('SUMMARY:Maintenance window: ns1 (reboot pending)\r\n');
    expect(after).toContain('a reboot is pending and will happen in the next window');
    expect(after).toContain('SEQUENCE:1\r\n');
  }, FLEET_TEST_TIMEOUT_MS);

  it('WHEN the next window opens, THEN the routine run of that window reboots the host once, and it comes back with the flag cleared', async () => {
    const openedOn = new Date(Date.now() - 10 * 60_000).toISOString().slice(0, 10);
    const open = await plan({ every: 'week', days: EVERY_DAY, start: clock(-10), duration: '1h' }, firstPlan);
    const run = await applyPlan(fleet, open);
    expect(run.exitCode, run.stderr).toBe(0);

    // The routine run (its timer's job at the opening) installs, records the opening and starts upkeep-reboot.
    const routine = await host.ssh('systemctl start upkeep-routine-updates.service', { timeoutMs: 300_000 });
    expect(routine.exitCode === 0 || routine.exitCode === 255, routine.stderr).toBe(true);
    const deadline = Date.now() + 240_000;
    let now = bootBefore;
    while (Date.now() < deadline && (host.reboots < 1 || now === bootBefore || now === '')) {
      await sleep(2_000);
      now = (await host.ssh('cat /proc/sys/kernel/random/boot_id', { timeoutMs: 10_000 })).stdout.trim();
    }
    expect(host.reboots).toBe(1);
    expect(now).not.toBe(bootBefore);
    const after = await host.ssh('systemctl is-system-running --wait; test -e /var/run/reboot-required && echo pending || echo clear; cat /var/lib/upkeep/reboot-last-opening');
    expect(after.stdout.split('\n').map((l) => l.trim())).toEqual([expect.stringMatching(/^(running|degraded)$/), 'clear', openedOn, '']);
    // Once per opening: asked again in the same window, it does not reboot again.
    const again = await host.ssh('systemctl start upkeep-reboot.service && journalctl -b -u upkeep-reboot.service -o cat --no-pager');
    expect(again.exitCode, again.stderr).toBe(0);
    await sleep(5_000);
    expect(host.reboots).toBe(1);
  }, FLEET_TEST_TIMEOUT_MS);

  it('publishes calendar.ics that python3-icalendar reads, whose openings are exactly those the host\'s window gate opens (DST and a blackout date included)', async () => {
    // A window with daylight saving time and a blackout date; only its plan directory is used.
    const out = await plan({ every: 'week', days: ['sun'], start: '03:30', duration: '90m', timeZone: 'Europe/Berlin', blackouts: ['2026-12-20'] });
    const feed = readFileSync(join(out, 'calendar.ics'), 'utf8');
    // The plan stores each file's content once, under its sha256 (plan format 3).
    const planned = (JSON.parse(readFileSync(join(out, 'plan.json'), 'utf8')) as PlanDocument).hosts.ns1!.files.find((f) => f.path === '/etc/upkeep/window.env')!;
    const windowEnv = readFileSync(join(out, objectPath(planned.sha256!)), 'utf8');
    expect((await host.ssh('cat > /root/calendar.ics', { input: feed })).exitCode).toBe(0);
    expect((await host.ssh('cat > /root/window.env', { input: windowEnv })).exitCode).toBe(0);
    expect((await host.ssh('cat > /root/expand.py', { input: EXPAND })).exitCode).toBe(0);

    const expanded = await host.ssh('python3 /root/expand.py /root/calendar.ics window-ns1@reboots.upkeep');
    expect(expanded.exitCode, expanded.stderr).toBe(0);
    const lines = expanded.stdout.trim().split('\n');
    const opens = lines.filter((l) => l.startsWith('open ')).map((l) => Number(l.split(' ')[1]));
    const skipped = lines.filter((l) => l.startsWith('skipped ')).map((l) => Number(l.split(' ')[1]));
    expect(opens).toHaveLength(60);
    expect(skipped.map((t) => new Date(t * 1000).toISOString())).toEqual(['2026-12-20T02:30:00.000Z']);
    // Summer and winter time: 03:30 Berlin is 01:30 UTC in July, 02:30 UTC in January.
    const utc = opens.map((t) => new Date(t * 1000).toISOString());
    expect(utc).toContain('2026-07-05T01:30:00.000Z');
    expect(utc).toContain('2026-01-04T02:30:00.000Z');
    expect(lines.at(-1)).toBe('duration 5400');

    // The host's gate, asked a minute after and a minute before every opening (and a minute before its end).
    const probe = [...opens.map((t) => `${t} open`), ...skipped.map((t) => `${t} skipped`)].join('\n');
    const gate = await host.ssh(
      'while read -r t kind; do ' +
        'in=$(UPKEEP_NOW=$((t + 60)) /usr/local/lib/upkeep/in-window.sh /root/window.env >/dev/null 2>&1 && echo open || echo closed); ' +
        'before=$(UPKEEP_NOW=$((t - 60)) /usr/local/lib/upkeep/in-window.sh /root/window.env >/dev/null 2>&1 && echo open || echo closed); ' +
        'end=$(UPKEEP_NOW=$((t + 5340)) /usr/local/lib/upkeep/in-window.sh /root/window.env >/dev/null 2>&1 && echo open || echo closed); ' +
        'echo "$t $kind $in $before $end"; done',
      { input: `${probe}\n`, timeoutMs: 300_000 },
    );
    expect(gate.exitCode, gate.stderr).toBe(0);
    const answers = gate.stdout.trim().split('\n');
    expect(answers).toHaveLength(61);
    for (const answer of answers) {
      const [t, kind, inside, before, end] = answer.split(' ');
      const when = new Date(Number(t) * 1000).toISOString();
      if (kind === 'open') expect(`${when} ${inside} ${before} ${end}`).toBe(`${when} open closed open`);
      else expect(`${when} ${inside}`).toBe(`${when} closed`);
    }
  }, FLEET_TEST_TIMEOUT_MS);
});
