// Just enough time-zone arithmetic (from Intl, no data files of our own) to list when a window
// opens, so validation can compare staging and production windows. Compiled timers never use
// this: they carry the time zone to systemd, which does the real scheduling.

import type { ResolvedWindow } from './resolved.ts';

const DAY_MS = 86_400_000;
const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const formatters = new Map<string, Intl.DateTimeFormat>();

/** Offset of `timeZone` from UTC at the instant `utcMs`, in milliseconds. */
function offsetAt(utcMs: number, timeZone: string): number {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    formatters.set(timeZone, f);
  }
  const p = Object.fromEntries(f.formatToParts(utcMs).map((x) => [x.type, Number(x.value)]));
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(utcMs / 1000) * 1000;
}

/** The UTC instant of local wall-clock time `minute` on the local date y-m-d in `timeZone`. */
export function zonedToUtc(year: number, month: number, day: number, minute: number, timeZone: string): number {
  const wall = Date.UTC(year, month - 1, day, 0, minute);
  const first = wall - offsetAt(wall, timeZone);
  return wall - offsetAt(first, timeZone);
}

function opensOn(window: ResolvedWindow, date: Date): boolean {
  if (!window.days.includes(WEEKDAYS[date.getUTCDay()])) return false;
  if (window.every === 'week' || window.nth === undefined) return true;
  const day = date.getUTCDate();
  if (window.nth === 'last') return day + 7 > new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 0)).getUTCDate();
  return day > (window.nth - 1) * 7 && day <= window.nth * 7;
}

/** UTC instants (ms) at which `window` opens between `fromMs` and `toMs`, blackout dates left out. */
export function windowOpenings(window: ResolvedWindow, fromMs: number, toMs: number): number[] {
  const out: number[] = [];
  for (let t = fromMs - DAY_MS; t <= toMs + DAY_MS; t += DAY_MS) {
    const date = new Date(t);
    const iso = date.toISOString().slice(0, 10);
    if (!opensOn(window, date) || window.blackouts.includes(iso)) continue;
    const at = zonedToUtc(date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate(), window.startMinute, window.timeZone);
    if (at >= fromMs && at < toMs) out.push(at);
  }
  return out;
}
