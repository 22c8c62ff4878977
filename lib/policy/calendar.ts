// A pure check of systemd OnCalendar expressions (systemd.time(7)), so a policy with a bad
// schedule is refused at plan time on any machine, with or without systemd. The compiled units
// are checked again with the real `systemd-analyze calendar` in the tests.

import { isTimeZoneName, timeZoneProblem } from './time-zone.ts';

const SHORTHANDS = new Set(['minutely', 'hourly', 'daily', 'weekly', 'monthly', 'yearly', 'annually', 'quarterly', 'semiannually']);
const WEEKDAY = '(?:mon|tue|wed|thu|fri|sat|sun)(?:day|sday|nesday|rsday|urday)?';
const DAY_NAMES = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const WEEKDAYS = new RegExp(`^${WEEKDAY}(?:(?:\\.\\.|-)${WEEKDAY})?(?:,${WEEKDAY}(?:(?:\\.\\.|-)${WEEKDAY})?)*$`, 'i');

/** One component such as "*", "5", "1..7", "0/15", "01,15" checked against its range (systemd refuses "*" with a repetition). */
function component(text: string, min: number, max: number): boolean {
  return text.split(',').every((part) => {
    const m = /^(\*|\d+)(?:\.\.(\d+))?(?:\/(\d+))?$/.exec(part);
    if (!m || (m[1] === '*' && (m[2] !== undefined || m[3] !== undefined))) return false;
    const values = [m[1], m[2]].filter((v): v is string => v !== undefined && v !== '*').map(Number);
    if (m[3] !== undefined && Number(m[3]) === 0) return false;
    return values.every((v) => v >= min && v <= max) && (values.length < 2 || values[0] <= values[1]);
  });
}

function date(text: string): boolean {
  const m = /^(?:(\*|[\d.,/]+)-)?(\*|[\d.,/]+)([-~])(\*|[\d.,/]+)$/.exec(text);
  if (!m) return false;
  // systemd counts at most 28 days back from the end of a month (~01 to ~28).
  return (m[1] === undefined || component(m[1], 1970, 2199)) && component(m[2], 1, 12) && component(m[4], 1, m[3] === '~' ? 28 : 31);
}

/** A weekday range that runs backwards ("Sun..Mon"), which systemd refuses, or undefined. */
function backwardsRange(weekdays: string): string | undefined {
  return weekdays.split(',').find((part) => {
    const [from, to] = part.toLowerCase().split(/\.\.|-/).map((name) => DAY_NAMES.indexOf(name.slice(0, 3)));
    return to !== undefined && (from as number) > to;
  });
}

/**
 * The values a valid component stands for, within min..max: "a/s" repeats from a up to max, or,
 * for days counted from the end of the month ("~07/1": the last seven), from a down to min.
 */
function valuesOf(text: string, min: number, max: number, fromEnd = false): number[] {
  const out: number[] = [];
  for (const part of text.split(',')) {
    const m = /^(\*|\d+)(?:\.\.(\d+))?(?:\/(\d+))?$/.exec(part) as RegExpExecArray;
    const start = m[1] === '*' ? min : Number(m[1]);
    const step = Number(m[3] ?? 1);
    if (fromEnd && m[2] === undefined && m[3] !== undefined) {
      for (let v = start; v >= min; v -= step) out.push(v);
      continue;
    }
    const end = m[2] !== undefined ? Number(m[2]) : m[1] === '*' || m[3] !== undefined ? max : start;
    for (let v = start; v <= end; v += step) out.push(v);
  }
  return out;
}

/** Weekdays (0 = Monday) a valid weekday word stands for. */
function weekdaysOf(text: string): Set<number> {
  const out = new Set<number>();
  for (const part of text.toLowerCase().split(',')) {
    const [from = 0, to = from] = part.split(/\.\.|-/).map((name) => DAY_NAMES.indexOf(name.slice(0, 3)));
    for (let d = from; d <= to; d++) out.add(d);
  }
  return out;
}

/** Years over which the Gregorian calendar repeats itself (weekdays and leap days included). */
const GREGORIAN_CYCLE = Array.from({ length: 400 }, (_, i) => 2000 + i);

/**
 * Whether a valid date word (and weekday word) names a day that exists: systemd accepts
 * "*-02-30" or "Mon 2027-02-02..07" and then never runs the timer ("Next elapse: never").
 */
function dateExists(dateWord: string, weekdayWord: string | undefined): boolean {
  const m = /^(?:(\*|[\d.,/]+)-)?(\*|[\d.,/]+)([-~])(\*|[\d.,/]+)$/.exec(dateWord) as RegExpExecArray;
  const years = m[1] === undefined || m[1] === '*' ? GREGORIAN_CYCLE : valuesOf(m[1], 1970, 2199);
  const months = valuesOf(m[2], 1, 12);
  // "~" counts days from the end of the month: ~1 is its last day.
  const fromEnd = m[3] === '~';
  const days = valuesOf(m[4], 1, 31, fromEnd);
  const weekdays = weekdayWord === undefined ? undefined : weekdaysOf(weekdayWord);
  for (const year of years) {
    for (const month of months) {
      const last = new Date(Date.UTC(year, month, 0)).getUTCDate();
      for (const value of days) {
        if (value > last) continue;
        const day = fromEnd ? last + 1 - value : value;
        if (weekdays === undefined || weekdays.has((new Date(Date.UTC(year, month - 1, day)).getUTCDay() + 6) % 7)) return true;
      }
    }
  }
  return false;
}

function time(text: string): boolean {
  const parts = text.split(':');
  if (parts.length < 2 || parts.length > 3) return false;
  return component(parts[0], 0, 23) && component(parts[1], 0, 59) && (parts[2] === undefined || component(parts[2].replace(/\.\d+$/, ''), 0, 59));
}

/** Undefined when `expr` is a valid OnCalendar expression, else what is wrong with it. */
export function calendarProblem(expr: string): string | undefined {
  const words = expr.trim().split(/\s+/);
  if (words.length === 1 && SHORTHANDS.has(words[0].toLowerCase())) return undefined;
  let i = 0;
  const weekday = WEEKDAYS.test(words[0] ?? '') ? words[0] : undefined;
  if (weekday !== undefined) {
    const backwards = backwardsRange(weekday);
    if (backwards !== undefined) return `"${backwards}" runs backwards: systemd takes weekday ranges from Monday to Sunday only (e.g. Mon..Fri, Sat,Sun)`;
    i++;
  }
  if (i < words.length && /[-~]/.test(words[i]) && !words[i].includes(':')) {
    if (!date(words[i])) return `"${words[i]}" is not a date such as *-*-01 or 2026-12-24`;
    if (!dateExists(words[i], weekday)) {
      const named = weekday === undefined ? `"${words[i]}" names no date that exists` : `"${weekday} ${words[i]}" names no date that exists on those weekdays`;
      return `${named}: the timer would never run (systemd-analyze calendar says "Next elapse: never")`;
    }
    i++;
  }
  if (i < words.length && words[i].includes(':')) {
    if (!time(words[i])) return `"${words[i]}" is not a time such as 02:00 or 02:00:00`;
    i++;
  }
  if (i === 0) return `"${expr}" is not a systemd calendar expression (e.g. "daily", "Sun *-*-* 02:00:00")`;
  if (i < words.length - 1) return `"${words.slice(i).join(' ')}" is not a weekday, date, time or time zone`;
  if (i === words.length - 1) {
    // A time zone Intl knows may still be spelled in a way systemd refuses ("europe/berlin").
    if (!isTimeZoneName(words[i])) return `"${words[i]}" is not a weekday, date, time or time zone`;
    return timeZoneProblem(words[i]);
  }
  return undefined;
}
