// Maintenance windows: checked and turned into exact systemd calendar expressions.
//
// A window opens at a wall-clock time in its own time zone; systemd evaluates an OnCalendar
// expression that ends in a time zone in that zone, so the timers follow daylight saving time
// without us computing UTC offsets. The same numbers (start minute, duration, days, nth, blackouts)
// go to the hosts' runtime gate (lib/runtime/in-window.sh), which refuses disruptive work when a
// timer fires late or on a blackout date.

import { tryParseDuration } from './duration.ts';
import type { PolicyIssue, PolicyPath } from './errors.ts';
import type { MaintenanceWindow, Weekday } from './model.ts';
import type { ResolvedWindow } from './resolved.ts';
import { timeZoneProblem } from './time-zone.ts';

/** Weekdays in calendar order, as systemd spells them. */
const WEEKDAYS: readonly Weekday[] = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const SYSTEMD_DAY: Record<Weekday, string> = { mon: 'Mon', tue: 'Tue', wed: 'Wed', thu: 'Thu', fri: 'Fri', sat: 'Sat', sun: 'Sun' };

/** Days of the month on which the nth weekday can fall; "last" counts from the end (~07/1 = last 7 days). */
const NTH_DAYS: Record<1 | 2 | 3 | 4 | 'last', string> = { 1: '*-*-01..07', 2: '*-*-08..14', 3: '*-*-15..21', 4: '*-*-22..28', last: '*-*~07/1' };

const TIME_OF_DAY = /^([01]\d|2[0-3]):([0-5]\d)$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const MAX_WINDOW_SECONDS = 24 * 3600;
/** Years checked for skipped openings; fixed so that resolving is a pure function of the policy. */
const CHECK_FROM_YEAR = 2026;
const CHECK_YEARS = 3;

function isCalendarDate(text: string): boolean {
  const m = DATE.exec(text);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

/** "YYYY-MM-DD HH:MM" wall clock of `epochMs` in `zone`. */
function localDateTime(epochMs: number, format: Intl.DateTimeFormat): string {
  const parts = format.formatToParts(epochMs);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')} ${get('hour')}:${get('minute')}`;
}

/** True when the calendar day starting at `utcMidnight` is an opening day of a monthly window. */
function isMonthlyOpening(utcMidnight: number, weekday: Weekday, nth: 1 | 2 | 3 | 4 | 'last'): boolean {
  const date = new Date(utcMidnight);
  if (WEEKDAYS[(date.getUTCDay() + 6) % 7] !== weekday) return false;
  const dom = date.getUTCDate();
  if (nth === 'last') return new Date(utcMidnight + 7 * 86400_000).getUTCMonth() !== date.getUTCMonth();
  return dom > (nth - 1) * 7 && dom <= nth * 7;
}

/**
 * The first opening day (YYYY-MM-DD) of a monthly window on which the wall-clock time `start`
 * does not exist in `zone` because clocks jump forward. systemd skips such an elapse entirely,
 * so the window would not open at all that month.
 */
function firstSkippedOpening(start: string, zone: string, weekday: Weekday, nth: 1 | 2 | 3 | 4 | 'last'): string | undefined {
  const [h, m] = start.split(':').map(Number) as [number, number];
  const format = new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  for (let day = Date.UTC(CHECK_FROM_YEAR, 0, 1); day < Date.UTC(CHECK_FROM_YEAR + CHECK_YEARS, 0, 1); day += 86400_000) {
    if (!isMonthlyOpening(day, weekday, nth)) continue;
    const wanted = `${new Date(day).toISOString().slice(0, 10)} ${start}`;
    // Every instant whose local time is `start` on this date lies within 15 h of the UTC instant
    // with the same digits (UTC offsets are between -12 h and +14 h); scan them in 15 min steps.
    const naive = day + (h * 60 + m) * 60_000;
    let seen = false;
    for (let t = naive - 15 * 3600_000; t <= naive + 15 * 3600_000 && !seen; t += 15 * 60_000) {
      seen = localDateTime(t, format) === wanted;
    }
    if (!seen) return wanted.slice(0, 10);
  }
  return undefined;
}


/**
 * Checks a maintenance window and resolves it. Every problem is returned as an issue under `path`;
 * `window` is present only when there are none.
 */
export function resolveWindow(spec: MaintenanceWindow, path: PolicyPath): { window?: ResolvedWindow; issues: PolicyIssue[] } {
  const issues: PolicyIssue[] = [];
  const issue = (key: string | undefined, message: string) => issues.push({ path: key === undefined ? path : [...path, key], message });

  const start = TIME_OF_DAY.exec(String(spec.start));
  if (!start) issue('start', `"${String(spec.start)}" is not a time of day "HH:MM" (00:00 to 23:59)`);
  const startMinute = start ? Number(start[1]) * 60 + Number(start[2]) : 0;

  const durationSeconds = tryParseDuration(spec.duration);
  if (durationSeconds === undefined) issue('duration', `"${String(spec.duration)}" is not a positive duration such as "2h" or "90m"`);
  else if (durationSeconds > MAX_WINDOW_SECONDS) issue('duration', `a window is open at most 24h, not ${spec.duration}`);
  else if (durationSeconds < 60) issue('duration', `a window must stay open at least 1m, not ${spec.duration}`);

  const timeZone = spec.timeZone ?? 'UTC';
  const zoneProblem = timeZoneProblem(String(timeZone));
  if (zoneProblem !== undefined) issue('timeZone', zoneProblem);

  const blackouts = spec.blackouts ?? [];
  if (!Array.isArray(blackouts)) issue('blackouts', 'must be a list of dates "YYYY-MM-DD"');
  else blackouts.forEach((d, i) => {
    if (!isCalendarDate(String(d))) issues.push({ path: [...path, 'blackouts', i], message: `"${String(d)}" is not a date "YYYY-MM-DD"` });
  });

  let days: Weekday[] = [];
  let nth: ResolvedWindow['nth'];
  if (spec.every === 'week') {
    const given = Array.isArray(spec.days) ? spec.days : [];
    if (given.length === 0) issue('days', 'a weekly window needs at least one weekday');
    given.forEach((d, i) => {
      if (!WEEKDAYS.includes(d)) issues.push({ path: [...path, 'days', i], message: `"${String(d)}" is not a weekday (${WEEKDAYS.join(', ')})` });
    });
    days = WEEKDAYS.filter((d) => given.includes(d));
  } else if (spec.every === 'month') {
    if (!WEEKDAYS.includes(spec.weekday)) issue('weekday', `"${String(spec.weekday)}" is not a weekday (${WEEKDAYS.join(', ')})`);
    else days = [spec.weekday];
    if (![1, 2, 3, 4, 'last'].includes(spec.nth)) issue('nth', `"${String(spec.nth)}" is not 1, 2, 3, 4 or "last"`);
    else nth = spec.nth;
  } else {
    issue('every', `"${String((spec as { every?: unknown }).every)}" is not "week" or "month"`);
  }

  if (issues.length === 0 && spec.every === 'month') {
    const skipped = firstSkippedOpening(spec.start, timeZone, spec.weekday, spec.nth);
    if (skipped) {
      issue('start', `${spec.start} does not exist in ${timeZone} on days when clocks jump forward (e.g. ${skipped}); systemd skips such an opening, so a monthly window could miss a whole month; start outside that hour`);
    }
  }

  if (issues.length > 0) return { issues };

  const hh = String(Math.floor(startMinute / 60)).padStart(2, '0');
  const mm = String(startMinute % 60).padStart(2, '0');
  const dayList = days.map((d) => SYSTEMD_DAY[d]).join(',');
  const dates = nth === undefined ? '*-*-*' : NTH_DAYS[nth];
  const window: ResolvedWindow = {
    every: spec.every,
    days,
    ...(nth === undefined ? {} : { nth }),
    startMinute,
    durationSeconds: durationSeconds!,
    timeZone,
    blackouts: [...new Set(blackouts)].sort(),
    onCalendar: [`${dayList} ${dates} ${hh}:${mm}:00 ${timeZone}`],
  };
  return { window, issues };
}
