import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { windowEnv } from '../../lib/compile/updates.ts';
import type { ResolvedWindow } from '../../lib/policy/resolved.ts';
import { monthlyWindow, sundayWindow } from '../fixtures/resolved-fleet.ts';
import { runScript, tempDir } from './run-script.ts';

/** Runs in-window.sh for `window` as if the clock showed the UTC instant `utc`. */
function gate(window: ResolvedWindow, utc: string) {
  const dir = tempDir({ 'window.env': windowEnv(window) });
  const now = String(Date.parse(utc) / 1000);
  return runScript('in-window.sh', [join(dir, 'window.env')], { UPKEEP_NOW: now });
}

const opensAt = (window: ResolvedWindow, utc: string) => {
  const run = gate(window, utc);
  return run.status === 0 ? run.stdout.trim() : undefined;
};

describe('in-window.sh: is the maintenance window open now?', () => {
  describe('GIVEN a weekly window Sunday 02:00-04:00 Europe/Berlin', () => {
    it('is open at 02:00 and closed again at 04:00 local time in summer (CEST, UTC+2)', () => {
      expect(opensAt(sundayWindow, '2026-07-05T00:00:00Z')).toBe('2026-07-05');
      expect(opensAt(sundayWindow, '2026-07-05T01:59:59Z')).toBe('2026-07-05');
      expect(opensAt(sundayWindow, '2026-07-05T02:00:00Z')).toBeUndefined();
      expect(opensAt(sundayWindow, '2026-07-04T23:59:59Z')).toBeUndefined();
    });

    it('follows the clock change on 25 October 2026: opens at 02:00 CEST and closes at 04:00 CET, three real hours later', () => {
      expect(opensAt(sundayWindow, '2026-10-24T23:59:00Z')).toBeUndefined();
      expect(opensAt(sundayWindow, '2026-10-25T00:00:00Z')).toBe('2026-10-25');
      expect(opensAt(sundayWindow, '2026-10-25T01:30:00Z')).toBe('2026-10-25');
      expect(opensAt(sundayWindow, '2026-10-25T02:59:59Z')).toBe('2026-10-25');
      expect(opensAt(sundayWindow, '2026-10-25T03:00:00Z')).toBeUndefined();
    });

    it('opens at 02:00 CET (01:00 UTC) in winter', () => {
      expect(opensAt(sundayWindow, '2026-11-01T00:59:59Z')).toBeUndefined();
      expect(opensAt(sundayWindow, '2026-11-01T01:00:00Z')).toBe('2026-11-01');
      expect(opensAt(sundayWindow, '2026-11-01T03:00:00Z')).toBeUndefined();
    });

    it('stays closed on a Saturday at the same hour', () => {
      const run = gate(sundayWindow, '2026-10-31T01:30:00Z');
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('does not open on 2026-10-31');
    });

    it('stays closed on a blackout Sunday and says why', () => {
      const run = gate(sundayWindow, '2026-12-20T01:30:00Z');
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('2026-12-20 is a blackout date');
      expect(opensAt(sundayWindow, '2026-12-13T01:30:00Z')).toBe('2026-12-13');
    });
  });

  describe('GIVEN a monthly window on the first Wednesday, 22:00 UTC for 4 hours', () => {
    it('is open on the first Wednesday evening and past midnight into Thursday, reporting the opening date', () => {
      expect(opensAt(monthlyWindow, '2026-12-02T22:00:00Z')).toBe('2026-12-02');
      expect(opensAt(monthlyWindow, '2026-12-03T01:59:00Z')).toBe('2026-12-02');
      expect(opensAt(monthlyWindow, '2026-12-03T02:00:00Z')).toBeUndefined();
    });

    it('is closed on the second Wednesday', () => {
      expect(opensAt(monthlyWindow, '2026-12-09T23:00:00Z')).toBeUndefined();
    });

    it('with nth "last", opens only on the last such weekday of the month', () => {
      const last: ResolvedWindow = { ...monthlyWindow, nth: 'last' };
      expect(opensAt(last, '2026-12-30T23:00:00Z')).toBe('2026-12-30');
      expect(opensAt(last, '2026-12-23T23:00:00Z')).toBeUndefined();
    });

    it('with nth "last", counts by the local calendar across a clock change: a week of seconds is another local date', () => {
      // Last Sunday of October 2026 is the 25th, the day Berlin's clocks go back; opening 00:30.
      const lastSunday: ResolvedWindow = { ...monthlyWindow, days: ['sun'], nth: 'last', startMinute: 30, durationSeconds: 3600, timeZone: 'Europe/Berlin' };
      expect(opensAt(lastSunday, '2026-10-24T22:31:00Z')).toBe('2026-10-25');
      // The last Tuesday of March 2026 is the 31st, not the 24th (clocks go forward on the 29th).
      const lastTuesday: ResolvedWindow = { ...monthlyWindow, days: ['tue'], nth: 'last', startMinute: 23 * 60 + 30, durationSeconds: 3600, timeZone: 'Europe/Berlin' };
      expect(opensAt(lastTuesday, '2026-03-24T22:35:00Z')).toBeUndefined();
      expect(opensAt(lastTuesday, '2026-03-31T21:35:00Z')).toBe('2026-03-31');
      // February 2024 has 29 days: its last Thursday is the 29th, not the 22nd.
      const lastThursday: ResolvedWindow = { ...monthlyWindow, days: ['thu'], nth: 'last', startMinute: 120, durationSeconds: 3600, timeZone: 'UTC' };
      expect(opensAt(lastThursday, '2024-02-29T02:10:00Z')).toBe('2024-02-29');
      expect(opensAt(lastThursday, '2024-02-22T02:10:00Z')).toBeUndefined();
    });
  });

  it('fails with 255 (a failed unit under ExecCondition=, not a silent skip) on a broken configuration', () => {
    const dir = tempDir({ 'window.env': "UPKEEP_WINDOW_DAYS='sun'\n" });
    const run = runScript('in-window.sh', [join(dir, 'window.env')]);
    expect(run.status).toBe(255);
    expect(run.stderr).toContain('UPKEEP_WINDOW_START_MINUTE is not set');
  });

  it('fails with 255 on a time zone the host does not know, where date would silently use UTC', () => {
    const dir = tempDir({ 'window.env': windowEnv({ ...sundayWindow, timeZone: 'Europe/Atlantis' }) });
    const run = runScript('in-window.sh', [join(dir, 'window.env')], { UPKEEP_NOW: String(Date.parse('2026-11-01T01:30:00Z') / 1000) });
    expect(run.status).toBe(255);
    expect(run.stderr).toContain('unknown time zone Europe/Atlantis');
  });
});
