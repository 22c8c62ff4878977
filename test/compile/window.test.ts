import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileHost } from '../../lib/compile/host.ts';
import { windowEnv } from '../../lib/compile/updates.ts';
import type { MaintenanceWindow } from '../../lib/policy/model.ts';
import type { ResolvedWindow } from '../../lib/policy/resolved.ts';
import { resolveWindow } from '../../lib/policy/window.ts';
import { resolvedFleet } from '../fixtures/resolved-fleet.ts';
import { runScript, tempDir } from '../runtime/run-script.ts';
import { programsAvailable } from '../programs.ts';

const berlinSunday: MaintenanceWindow = { every: 'week', days: ['sun'], start: '02:00', duration: '2h', timeZone: 'Europe/Berlin' };

function resolved(spec: MaintenanceWindow): ResolvedWindow {
  const { window, issues } = resolveWindow(spec, ['updates', 'window']);
  expect(issues).toEqual([]);
  return window!;
}

/** The next `n` elapses of `expression` after `base`, as computed by the real systemd-analyze. */
function elapses(expression: string, base: string, n: number): number[] {
  const run = spawnSync('systemd-analyze', ['calendar', `--iterations=${n}`, `--base-time=${base}`, expression], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
  expect(run.stderr).toBe('');
  return [...run.stdout.matchAll(/(?:Next elapse|Iter\. #\d+): \w{3} (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) UTC/g)].map((m) => Date.parse(`${m[1].replace(' ', 'T')}Z`));
}

function berlin(ms: number): { weekday: string; minute: number } {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', { timeZone: 'Europe/Berlin', weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(ms).map((p) => [p.type, p.value]),
  );
  return { weekday: parts.weekday, minute: Number(parts.hour) * 60 + Number(parts.minute) };
}

describe.skipIf(!programsAvailable('test/compile/window.test.ts', ['systemd-analyze']))('resolveWindow', () => {
  it('turns a weekly window into one OnCalendar expression in its time zone', () => {
    const window = resolved({ every: 'week', days: ['sun', 'wed'], start: '02:00', duration: '2h', timeZone: 'Europe/Berlin', blackouts: ['2026-12-27', '2026-12-20'] });
    expect(window.onCalendar).toEqual(['Wed,Sun *-*-* 02:00:00 Europe/Berlin']);
    expect(window).toMatchObject({ days: ['wed', 'sun'], startMinute: 120, durationSeconds: 7200, blackouts: ['2026-12-20', '2026-12-27'] });
  });

  it('places the nth weekday of a month in its week of days, and "last" in the last seven days', () => {
    expect(resolved({ every: 'month', nth: 1, weekday: 'sun', start: '02:00', duration: '2h', timeZone: 'Europe/Berlin' }).onCalendar).toEqual(['Sun *-*-01..07 02:00:00 Europe/Berlin']);
    expect(resolved({ every: 'month', nth: 3, weekday: 'tue', start: '23:15', duration: '90m' }).onCalendar).toEqual(['Tue *-*-15..21 23:15:00 UTC']);
    expect(resolved({ every: 'month', nth: 'last', weekday: 'sun', start: '04:00', duration: '2h', timeZone: 'Europe/Berlin' }).onCalendar).toEqual(['Sun *-*~07/1 04:00:00 Europe/Berlin']);
  });

  it('collects every problem of a window at once, each under its own path', () => {
    const { window, issues } = resolveWindow(
      { every: 'week', days: [], start: '24:00', duration: '25h', timeZone: 'Mars/Olympus', blackouts: ['2026-02-30'] } as MaintenanceWindow,
      ['groups', 'web', 'updates', 'window'],
    );
    expect(window).toBeUndefined();
    expect(issues.map((i) => i.path.slice(4).join('.'))).toEqual(['start', 'duration', 'timeZone', 'blackouts.0', 'days']);
  });

  it('refuses a zero duration', () => {
    expect(resolveWindow({ ...berlinSunday, duration: '0h' }, []).issues[0].message).toContain('not a positive duration');
  });

  it('refuses a monthly window whose start does not exist when clocks jump forward, because systemd skips that month', () => {
    const lastSundayAtTwo: MaintenanceWindow = { every: 'month', nth: 'last', weekday: 'sun', start: '02:00', duration: '2h', timeZone: 'Europe/Berlin' };
    const { issues } = resolveWindow(lastSundayAtTwo, ['w']);
    expect(issues).toHaveLength(1);
    expect(issues[0].message).toContain('2026-03-29');
    // The real systemd agrees: no elapse in March 2027 (clocks jump from 02:00 to 03:00 on 28 March).
    const months = elapses('Sun *-*~07/1 02:00:00 Europe/Berlin', '2027-02-01 00:00 UTC', 3).map((t) => new Date(t).getUTCMonth() + 1);
    expect(months).toEqual([2, 4, 5]);
  });

  it('lets a weekly window start in that hour: one skipped Sunday still leaves a window within the month', () => {
    expect(resolveWindow(berlinSunday, []).issues).toEqual([]);
  });
});

describe.skipIf(!programsAvailable('test/compile/window.test.ts', ['systemd-analyze']))('GIVEN Sunday 02:00-04:00 Europe/Berlin, the routine update timer', () => {
  const fleet = resolvedFleet();
  const timer = compileHost(fleet, fleet.hosts.find((h) => h.name === 'web1')!).files.find((f) => f.path.endsWith('/upkeep-routine-updates.timer'))!;
  const onCalendar = [...timer.content!.matchAll(/^OnCalendar=(.*)$/gm)].map((m) => m[1]);
  const randomized = Number(/^RandomizedDelaySec=(\d+)s$/m.exec(timer.content!)![1]);
  const window = resolved(berlinSunday);
  const env = join(tempDir({ 'window.env': windowEnv(window) }), 'window.env');

  it('carries the window expression with its time zone', () => {
    expect(onCalendar).toEqual(['Sun *-*-* 02:00:00 Europe/Berlin']);
    expect(onCalendar).toEqual(window.onCalendar);
  });

  for (const base of ['2026-10-01 00:00 UTC', '2027-10-01 00:00 UTC', '2027-03-01 00:00 UTC']) {
    it(`fires only inside the window, randomized delay included, across the clock change after ${base.slice(0, 7)}`, () => {
      const times = elapses(onCalendar[0], base, 8);
      expect(times).toHaveLength(8);
      for (const t of times) {
        const first = berlin(t);
        const last = berlin(t + randomized * 1000);
        expect(first.weekday).toBe('Sun');
        expect(first.minute).toBeGreaterThanOrEqual(120);
        expect(last.minute).toBeLessThan(240);
        // The runtime gate agrees with systemd at both ends of the randomized delay.
        for (const at of [t, t + randomized * 1000]) {
          expect(runScript('in-window.sh', [env], { UPKEEP_NOW: String(at / 1000) }).status).toBe(0);
        }
      }
    });
  }

  it('fires at 00:00 UTC on 25 October 2026 (02:00 CEST) and at 01:00 UTC a week later (02:00 CET)', () => {
    const [a, b] = elapses(onCalendar[0], '2026-10-24 12:00 UTC', 2);
    expect(new Date(a).toISOString()).toBe('2026-10-25T00:00:00.000Z');
    expect(new Date(b).toISOString()).toBe('2026-11-01T01:00:00.000Z');
  });
});
