// Schedules and time zones are refused at plan time exactly when systemd would refuse them on the
// host, or accept them and never run the timer: the pure check (lib/policy/calendar.ts,
// lib/policy/time-zone.ts) against the real `systemd-analyze calendar` where it is installed.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { calendarProblem } from '../../lib/policy/calendar.ts';
import { timeZoneProblem } from '../../lib/policy/time-zone.ts';
import { programsAvailable } from '../programs.ts';

describe('calendarProblem', () => {
  it('refuses a date that never comes, which systemd accepts and never runs ("Next elapse: never")', () => {
    expect(calendarProblem('*-02-30 01:30')).toBe('"*-02-30" names no date that exists: the timer would never run (systemd-analyze calendar says "Next elapse: never")');
    expect(calendarProblem('*-04-31')).toMatch(/^"\*-04-31" names no date that exists/);
    expect(calendarProblem('2027-02-29 03:00')).toMatch(/^"2027-02-29" names no date that exists/);
    expect(calendarProblem('Mon 2027-02-02..07 03:00')).toBe('"Mon 2027-02-02..07" names no date that exists on those weekdays: the timer would never run (systemd-analyze calendar says "Next elapse: never")');
  });

  it('accepts dates that come only now and then: a leap day, the 31st, a leap day on a weekend', () => {
    for (const expr of ['*-02-29 01:30', '*-*-31 01:30', 'Sat,Sun *-02-29', '2027..2028-02-29', '*-02,04-30', 'Sun *-*~07/1 04:00:00 Europe/Berlin']) expect(calendarProblem(expr), expr).toBeUndefined();
  });

  it('takes a time zone only as the IANA database spells it: systemd matches names exactly', () => {
    expect(calendarProblem('*-*-* 01:30:00 europe/berlin')).toBe('"europe/berlin" is not spelled as the IANA time zone is: systemd and the hosts\' tz database match names exactly, capitals included — did you mean "Europe/Berlin"?');
    expect(calendarProblem('*-*-* 01:30:00 Europe/Berlin')).toBeUndefined();
    expect(calendarProblem('*-*-* 01:30:00 Mars/Olympus')).toBe('"Mars/Olympus" is not a weekday, date, time or time zone');
  });

  it('refuses what systemd cannot parse: a weekday range that runs backwards, a day more than 28 back from the end of a month, "*" with a repetition', () => {
    expect(calendarProblem('Sun..Mon *-*-* 03:00')).toBe('"Sun..Mon" runs backwards: systemd takes weekday ranges from Monday to Sunday only (e.g. Mon..Fri, Sat,Sun)');
    expect(calendarProblem('*-*~29 03:00')).toBe('"*-*~29" is not a date such as *-*-01 or 2026-12-24');
    expect(calendarProblem('*:*/15')).toBe('"*:*/15" is not a time such as 02:00 or 02:00:00');
  });
});

describe('timeZoneProblem', () => {
  it('accepts IANA names as written there, including those Node files under an older name', () => {
    for (const zone of ['Europe/Berlin', 'UTC', 'Etc/UTC', 'Asia/Kolkata', 'Europe/Kyiv', 'America/Argentina/Buenos_Aires', 'Etc/GMT+5']) expect(timeZoneProblem(zone), zone).toBeUndefined();
  });

  it('refuses another spelling with a did-you-mean naming the IANA spelling', () => {
    expect(timeZoneProblem('europe/berlin')).toMatch(/did you mean "Europe\/Berlin"\?$/);
    expect(timeZoneProblem('EUROPE/BERLIN')).toMatch(/did you mean "Europe\/Berlin"\?$/);
    expect(timeZoneProblem('asia/kolkata')).toMatch(/did you mean "Asia\/Kolkata"\?$/);
    expect(timeZoneProblem('utc')).toMatch(/did you mean "UTC"\?$/);
    expect(timeZoneProblem('Europe/Berlinn')).toBe('"Europe/Berlinn" is not an IANA time zone such as "Europe/Berlin" — did you mean "Europe/Berlin"?');
  });

  it('refuses a link name (US/Eastern), which not every tz database carries, naming the zone', () => {
    expect(timeZoneProblem('US/Eastern')).toBe('"US/Eastern" is another name (a link) for the IANA time zone "America/New_York": write the zone\'s own name, which every tz database has — did you mean "America/New_York"?');
  });
});

describe.skipIf(!programsAvailable('test/policy/calendar.test.ts', ['systemd-analyze']))('calendarProblem agrees with systemd-analyze calendar', () => {
  /** Whether systemd parses `expr` and will run it some time: it has a next elapse. */
  function systemdRuns(expr: string): boolean {
    const run = spawnSync('systemd-analyze', ['calendar', expr], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
    return run.status === 0 && /Next elapse: (?!never)/.test(run.stdout);
  }

  it.each([
    '*-02-30 01:30',
    '*-02-29 01:30',
    '*-04-31',
    '*-*-31',
    // Years far ahead, so that systemd's answer does not change as time passes.
    '2199-02-29',
    '2196-02-29',
    // 1 February 2196 is a Monday: the rest of that week has none.
    'Mon 2196-02-02..07',
    'Mon 2196-02-01..07',
    // The last three days of February 2190 are a Friday, Saturday and Sunday.
    'Mon 2190-02~03/1',
    'Sun 2190-02~03/1',
    'Sat,Sun *-02-29',
    '*-02,04-30',
    '*-*~07/1 04:00',
    'Sun *-*-01..07 02:00:00 Europe/Berlin',
    'Sun *-*-* 02:00:00 europe/berlin',
    '*-*-* 01:30:00 Asia/Kolkata',
    '*-*-* 01:30:00 Etc/UTC',
    'daily',
    // What systemd cannot parse at all.
    '*-*~28',
    '*-*~29',
    '*-01~31',
    '*-*-*/2 01:00',
    '*:*/15',
    '*:0/15',
    'Sun..Mon *-*-*',
    'Tue-Mon',
    'Mon..Sun',
  ])('%s', (expr) => {
    expect(calendarProblem(expr) === undefined, calendarProblem(expr)).toBe(systemdRuns(expr));
  });
});
