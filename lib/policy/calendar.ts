// A pure check of systemd OnCalendar expressions (systemd.time(7)), so a policy with a bad
// schedule is refused at plan time on any machine, with or without systemd. The compiled units
// are checked again with the real `systemd-analyze calendar` in the tests.

const SHORTHANDS = new Set(['minutely', 'hourly', 'daily', 'weekly', 'monthly', 'yearly', 'annually', 'quarterly', 'semiannually']);
const WEEKDAY = '(?:mon|tue|wed|thu|fri|sat|sun)(?:day|sday|nesday|rsday|urday)?';
const WEEKDAYS = new RegExp(`^${WEEKDAY}(?:(?:\\.\\.|-)${WEEKDAY})?(?:,${WEEKDAY}(?:(?:\\.\\.|-)${WEEKDAY})?)*$`, 'i');

/** One component such as "*", "5", "1..7", "0/15", "01,15" checked against its range. */
function component(text: string, min: number, max: number): boolean {
  return text.split(',').every((part) => {
    const m = /^(\*|\d+)(?:\.\.(\d+))?(?:\/(\d+))?$/.exec(part);
    if (!m) return false;
    const values = [m[1], m[2]].filter((v): v is string => v !== undefined && v !== '*').map(Number);
    if (m[3] !== undefined && Number(m[3]) === 0) return false;
    return values.every((v) => v >= min && v <= max) && (values.length < 2 || values[0] <= values[1]);
  });
}

function date(text: string): boolean {
  const m = /^(?:(\*|[\d.,/]+)-)?(\*|[\d.,/]+)([-~])(\*|[\d.,/]+)$/.exec(text);
  if (!m) return false;
  return (m[1] === undefined || component(m[1], 1970, 2199)) && component(m[2], 1, 12) && component(m[4], 1, 31);
}

function time(text: string): boolean {
  const parts = text.split(':');
  if (parts.length < 2 || parts.length > 3) return false;
  return component(parts[0], 0, 23) && component(parts[1], 0, 59) && (parts[2] === undefined || component(parts[2].replace(/\.\d+$/, ''), 0, 59));
}

function timeZone(text: string): boolean {
  if (text === 'UTC') return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: text });
    return true;
  } catch {
    return false;
  }
}

/** Undefined when `expr` is a valid OnCalendar expression, else what is wrong with it. */
export function calendarProblem(expr: string): string | undefined {
  const words = expr.trim().split(/\s+/);
  if (words.length === 1 && SHORTHANDS.has(words[0].toLowerCase())) return undefined;
  let i = 0;
  if (i < words.length && WEEKDAYS.test(words[i])) i++;
  if (i < words.length && /[-~]/.test(words[i]) && !words[i].includes(':')) {
    if (!date(words[i])) return `"${words[i]}" is not a date such as *-*-01 or 2026-12-24`;
    i++;
  }
  if (i < words.length && words[i].includes(':')) {
    if (!time(words[i])) return `"${words[i]}" is not a time such as 02:00 or 02:00:00`;
    i++;
  }
  if (i === 0) return `"${expr}" is not a systemd calendar expression (e.g. "daily", "Sun *-*-* 02:00:00")`;
  if (i < words.length - 1 || (i === words.length - 1 && !timeZone(words[i]))) return `"${words.slice(i).join(' ')}" is not a weekday, date, time or time zone`;
  return undefined;
}
