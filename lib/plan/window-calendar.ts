// calendar.ics: every host's coming maintenance windows as an iCalendar feed (RFC 5545), so a
// customer's calendar shows planned downtime ahead. Written with the plan.
//
// One recurring event per host (RRULE), not a list of dates: the feed then covers every coming
// window and stays a pure function of the policy, byte-identical on every run. Blackout dates are
// EXDATEs. Times are the window's wall clock in its own zone (TZID), with a VTIMEZONE built from
// this Node's time zone data for the years the events are anchored in and the next ten.
//
// Calendar clients replace an event by its UID when its SEQUENCE grows: UIDs are stable (host and
// fleet), and SEQUENCE is the previous feed's plus one whenever an event's content changed (a hash
// of it travels in X-UPKEEP-CONTENT). A host that left the fleet stays as a CANCELLED event, so
// clients remove it instead of keeping a stale window. DTSTAMP is fixed (the anchor) rather than
// the time of planning, so the same policy and previous feed always give the same bytes.

import { sha256 } from '../compile/generation.ts';
import type { ResolvedFleet, ResolvedHost, ResolvedWindow } from '../policy/resolved.ts';

/** Series start on the first opening on or after this day; also every event's DTSTAMP. */
const ANCHOR = { year: 2026, month: 1, day: 1 };
const ANCHOR_STAMP = '20260101T000000Z';
/** Years of time zone transitions written into each VTIMEZONE. */
const ZONE_YEARS = 11;
const PRODID = '-//upkeep//maintenance windows//EN';
const BYDAY: Record<string, string> = { mon: 'MO', tue: 'TU', wed: 'WE', thu: 'TH', fri: 'FR', sat: 'SA', sun: 'SU' };
const WEEKDAY_INDEX: Record<string, number> = { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 };

/** What the plan knows about a host's pending reboot: true, false, or absent when unknown. */
export type RebootPending = ReadonlyMap<string, boolean>;

export interface WindowCalendarInput {
  readonly fleet: ResolvedFleet;
  /** The feed written before (the base plan's, or the directory being replaced), for SEQUENCE. */
  readonly previous?: string;
  readonly rebootPending?: RebootPending;
}

/** TEXT value escaping (RFC 5545 3.3.11). */
function text(value: string): string {
  return value.replace(/[\\;,]/g, (c) => `\\${c}`).replace(/\r?\n/g, '\\n');
}

/** Folds a content line at 75 octets (RFC 5545 3.1), never inside a UTF-8 sequence. */
function fold(line: string): string {
  const out: string[] = [];
  let current = '';
  let octets = 0;
  for (const ch of line) {
    const size = Buffer.byteLength(ch);
    if (octets + size > (out.length === 0 ? 75 : 74)) {
      out.push(current);
      current = '';
      octets = 0;
    }
    current += ch;
    octets += size;
  }
  out.push(current);
  return out.join('\r\n ');
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');
const localStamp = (y: number, m: number, d: number, minute: number) => `${pad(y, 4)}${pad(m)}${pad(d)}T${pad(Math.floor(minute / 60))}${pad(minute % 60)}00`;

/** The first opening day (y, m, d) of `window` on or after the anchor. */
function firstOpening(window: ResolvedWindow): [number, number, number] {
  for (let t = Date.UTC(ANCHOR.year, ANCHOR.month - 1, ANCHOR.day); ; t += 86400_000) {
    const date = new Date(t);
    const weekday = Object.keys(WEEKDAY_INDEX).find((d) => WEEKDAY_INDEX[d] === date.getUTCDay()) as string;
    if (!window.days.includes(weekday as never)) continue;
    const dom = date.getUTCDate();
    const nth = window.nth;
    if (nth === 'last' && new Date(t + 7 * 86400_000).getUTCMonth() === date.getUTCMonth()) continue;
    if (typeof nth === 'number' && !(dom > (nth - 1) * 7 && dom <= nth * 7)) continue;
    return [date.getUTCFullYear(), date.getUTCMonth() + 1, dom];
  }
}

function rrule(window: ResolvedWindow): string {
  const days = window.days.map((d) => BYDAY[d]);
  if (window.every === 'week') return `RRULE:FREQ=WEEKLY;BYDAY=${days.join(',')}`;
  const nth = window.nth === 'last' ? '-1' : String(window.nth);
  return `RRULE:FREQ=MONTHLY;BYDAY=${nth}${days[0]}`;
}

function duration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `PT${h ? `${h}H` : ''}${m ? `${m}M` : ''}${s || (!h && !m) ? `${s}S` : ''}`;
}

const formats = new Map<string, Intl.DateTimeFormat>();

/** UTC offset of `zone` at `epochMs`, in minutes east of UTC. */
function offsetMinutes(zone: string, epochMs: number): number {
  let format = formats.get(zone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric' });
    formats.set(zone, format);
  }
  const parts = format.formatToParts(epochMs);
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const local = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'));
  return Math.round((local - Math.floor(epochMs / 60_000) * 60_000) / 60_000);
}

function utcOffset(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`;
}

/** Local wall-clock stamp of the instant `epochMs` seen with offset `offset` minutes. */
function wallClock(epochMs: number, offset: number): string {
  const d = new Date(epochMs + offset * 60_000);
  return localStamp(d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours() * 60 + d.getUTCMinutes());
}

/** VTIMEZONE for `zone`: the offset at the anchor, then every transition for ZONE_YEARS years. */
function vtimezone(zone: string): string[] {
  const start = Date.UTC(ANCHOR.year, ANCHOR.month - 1, ANCHOR.day) - 86400_000;
  const end = Date.UTC(ANCHOR.year + ZONE_YEARS, 0, 1);
  const initial = offsetMinutes(zone, start);
  const observance = (kind: 'STANDARD' | 'DAYLIGHT', from: number, to: number, at: string) => [`BEGIN:${kind}`, `DTSTART:${at}`, `TZOFFSETFROM:${utcOffset(from)}`, `TZOFFSETTO:${utcOffset(to)}`, `END:${kind}`];
  const lines = ['BEGIN:VTIMEZONE', `TZID:${text(zone)}`, ...observance('STANDARD', initial, initial, wallClock(start, initial))];
  let offset = initial;
  // Day steps find each transition (no zone changes twice a day); a binary search pins its minute.
  for (let t = start; t < end; t += 86400_000) {
    const next = offsetMinutes(zone, t + 86400_000);
    if (next === offset) continue;
    let [low, high] = [t, t + 86400_000];
    while (high - low > 60_000) {
      const mid = low + Math.floor((high - low) / 120_000) * 60_000;
      if (offsetMinutes(zone, mid) === offset) low = mid;
      else high = mid;
    }
    lines.push(...observance(next > offset ? 'DAYLIGHT' : 'STANDARD', offset, next, wallClock(high, offset)));
    offset = next;
  }
  lines.push('END:VTIMEZONE');
  return lines;
}

interface PreviousEvent {
  readonly sequence: number;
  readonly content: string;
  readonly cancelled: boolean;
  readonly lines: readonly string[];
}

/** The events of an earlier feed by UID (unfolded lines; enough for the feeds this module writes). */
function previousEvents(feed: string | undefined): Map<string, PreviousEvent> {
  const events = new Map<string, PreviousEvent>();
  if (feed === undefined) return events;
  const lines = feed.replace(/\r?\n[ \t]/g, '').split(/\r?\n/);
  let current: string[] | undefined;
  for (const line of lines) {
    if (line === 'BEGIN:VEVENT') current = [];
    else if (line === 'END:VEVENT' && current) {
      const field = (name: string) => current!.find((l) => l.startsWith(`${name}:`))?.slice(name.length + 1);
      const uid = field('UID');
      if (uid !== undefined) events.set(uid, { sequence: Number(field('SEQUENCE') ?? 0) || 0, content: field('X-UPKEEP-CONTENT') ?? '', cancelled: field('STATUS') === 'CANCELLED', lines: current });
      current = undefined;
    } else current?.push(line);
  }
  return events;
}

/** What the feed says of a host besides its window. */
export interface CalendarHost {
  readonly name: string;
  readonly group: string;
  readonly reboot: 'never' | 'when-needed' | 'always';
}

function describePending(reboot: CalendarHost['reboot'], pending: boolean | undefined): string {
  if (reboot === 'never') return 'This host never reboots automatically.';
  const when = reboot === 'always' ? 'It reboots in every window' : 'It reboots in a window only when an update requires it';
  const state = pending === undefined ? 'whether a reboot is pending was not known when this was planned' : pending ? 'a reboot is pending and will happen in the next window' : 'no reboot is pending';
  return `${when}; ${state}.`;
}

const uidOf = (fleet: string, host: string) => text(`window-${host}@${fleet}.upkeep`);

/** The lines of an event that say when the window is (DTSTART, DURATION, RRULE, EXDATEs). */
const SCHEDULE_LINE = /^(DTSTART|DURATION|RRULE|EXDATE)[:;]/;

function scheduleLines(window: ResolvedWindow): string[] {
  const [y, m, d] = firstOpening(window);
  const utc = window.timeZone === 'UTC';
  const at = (stamp: string) => (utc ? `:${stamp}Z` : `;TZID=${text(window.timeZone)}:${stamp}`);
  return [
    `DTSTART${at(localStamp(y, m, d, window.startMinute))}`,
    `DURATION:${duration(window.durationSeconds)}`,
    rrule(window),
    ...window.blackouts.map((date) => `EXDATE${at(localStamp(Number(date.slice(0, 4)), Number(date.slice(5, 7)), Number(date.slice(8, 10)), window.startMinute))}`),
  ];
}

function describedLines(fleet: string, host: CalendarHost, pending: boolean | undefined): string[] {
  return [
    `SUMMARY:${text(`Maintenance window: ${host.name}${pending ? ' (reboot pending)' : ''}`)}`,
    `DESCRIPTION:${text(`Updates of ${host.name} (group ${host.group}, fleet ${fleet}) may interrupt its services during this window. ${describePending(host.reboot, pending)}`)}`,
    'STATUS:CONFIRMED',
    'TRANSP:OPAQUE',
  ];
}

/** An event around `body`, its SEQUENCE the previous feed's, plus one when the body changed. */
function event(uid: string, body: readonly string[], previous: Map<string, PreviousEvent>): string[] {
  const content = sha256(body.join('\n')).slice(0, 32);
  const before = previous.get(uid);
  const sequence = before === undefined ? 0 : before.content === content && !before.cancelled ? before.sequence : before.sequence + 1;
  return ['BEGIN:VEVENT', `UID:${uid}`, `DTSTAMP:${ANCHOR_STAMP}`, `SEQUENCE:${sequence}`, ...body, `X-UPKEEP-CONTENT:${content}`, 'END:VEVENT'];
}

function hostEvent(fleet: ResolvedFleet, host: ResolvedHost, pending: boolean | undefined, previous: Map<string, PreviousEvent>): { uid: string; lines: string[] } {
  const uid = uidOf(fleet.name, host.name);
  const described = describedLines(fleet.name, { name: host.name, group: host.group, reboot: host.updates!.reboot }, pending);
  return { uid, lines: event(uid, [...scheduleLines(host.updates!.window), ...described], previous) };
}

/** An event's own lines, without those event() writes around them. */
const bodyOf = (e: PreviousEvent) => e.lines.filter((l) => !/^(UID|DTSTAMP|SEQUENCE|X-UPKEEP-CONTENT):/.test(l));

/** The events of hosts no longer in the feed, cancelled (once: a cancelled event stays as it was). */
function cancelledEvents(previous: Map<string, PreviousEvent>, current: ReadonlySet<string>): string[] {
  const lines: string[] = [];
  for (const uid of [...previous.keys()].sort()) {
    if (current.has(uid)) continue;
    const before = previous.get(uid)!;
    const kept = before.lines.filter((l) => !/^(SEQUENCE|STATUS|X-UPKEEP-CONTENT|UID|DTSTAMP):/.test(l));
    const sequence = before.cancelled ? before.sequence : before.sequence + 1;
    const tail = ['STATUS:CANCELLED', `X-UPKEEP-CONTENT:cancelled`];
    lines.push('BEGIN:VEVENT', `UID:${uid}`, `DTSTAMP:${ANCHOR_STAMP}`, `SEQUENCE:${sequence}`, ...kept.filter((l) => !l.startsWith('TRANSP:')), ...tail, 'END:VEVENT');
  }
  return lines;
}

/** calendar.ics for `fleet` (CRLF line ends, folded at 75 octets, as RFC 5545 requires). */
export function renderWindowCalendar(input: WindowCalendarInput): string {
  const { fleet } = input;
  const previous = previousEvents(input.previous);
  const hosts = fleet.hosts.filter((h) => h.updates !== undefined);
  const zones = [...new Set(hosts.map((h) => h.updates!.window.timeZone).filter((z) => z !== 'UTC'))].sort();
  const events = hosts.map((h) => hostEvent(fleet, h, input.rebootPending?.get(h.name), previous));
  const lines = [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    `PRODID:${PRODID}`,
    'CALSCALE:GREGORIAN',
    `X-WR-CALNAME:${text(`${fleet.name}: maintenance windows`)}`,
    ...zones.flatMap(vtimezone),
    ...events.flatMap((e) => e.lines),
    ...cancelledEvents(previous, new Set(events.map((e) => e.uid))),
    'END:VCALENDAR',
  ];
  return `${lines.map(fold).join('\r\n')}\r\n`;
}

export interface PendingFeedInput {
  /** The fleet's name, as in the feed's UIDs. */
  readonly fleet: string;
  /** The calendar.ics of the applied plan: the windows it promises. */
  readonly plan: string;
  /** The feed as last written where it is published, for SEQUENCE. @default plan */
  readonly previous?: string;
  /** The hosts of the plan by name. */
  readonly hosts: ReadonlyMap<string, CalendarHost>;
  /** Whether a reboot is pending on each host that was read; the events of the others stay as they were. */
  readonly rebootPending: RebootPending;
}

/**
 * The plan's feed with each host's pending reboot as `upkeep update` saw it on the hosts: the
 * windows stay the plan's (taken from its feed, so no policy is read), what the events say of a
 * pending reboot follows `rebootPending`, and SEQUENCE grows for every event that changed against
 * `previous`. For the hosts read, the bytes are those bin/plan --live writes for the same answers.
 */
export function withRebootPending(input: PendingFeedInput): string {
  const lines = input.plan.replace(/\r?\n[ \t]/g, '').split(/\r?\n/).filter((l) => l !== '');
  const plan = previousEvents(input.plan);
  const previous = previousEvents(input.previous ?? input.plan);
  // A host the plan's feed already cancelled stays cancelled even where the previous feed lacks it.
  for (const [uid, e] of plan) if (e.cancelled && !previous.has(uid)) previous.set(uid, e);
  const header = lines.slice(0, lines.indexOf('BEGIN:VEVENT') < 0 ? lines.indexOf('END:VCALENDAR') : lines.indexOf('BEGIN:VEVENT'));
  const byUid = new Map([...input.hosts.values()].map((h) => [uidOf(input.fleet, h.name), h]));
  const events: string[] = [];
  const current = new Set<string>();
  for (const [uid, e] of plan) {
    if (e.cancelled) continue;
    current.add(uid);
    const host = byUid.get(uid);
    const pending = host && input.rebootPending.get(host.name);
    const schedule = bodyOf(e).filter((l) => SCHEDULE_LINE.test(l));
    // A host not read keeps what the published feed said of it (else what the plan says).
    const before = previous.get(uid);
    const said = host && pending !== undefined ? describedLines(input.fleet, host, pending) : bodyOf(before && !before.cancelled ? before : e).filter((l) => !SCHEDULE_LINE.test(l));
    events.push(...event(uid, [...schedule, ...said], previous));
  }
  return `${[...header, ...events, ...cancelledEvents(previous, current), 'END:VCALENDAR'].map(fold).join('\r\n')}\r\n`;
}
