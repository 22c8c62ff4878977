// calendar.ics: RFC 5545 form (CRLF, folding, one VTIMEZONE per zone), stable UIDs, SEQUENCE that
// grows exactly when an event changed, cancellations, and the same bytes on every run. The feed is
// parsed and expanded by a real iCalendar library on a test host in test/fleet/reboots.test.ts.

import { describe, expect, it } from 'vitest';
import type { ResolvedHost } from '../../lib/policy/resolved.ts';
import { renderWindowCalendar, withRebootPending, type CalendarHost } from '../../lib/plan/window-calendar.ts';
import { resolvedFleet, sundayWindow } from '../fixtures/resolved-fleet.ts';

const fleet = resolvedFleet();
const hostNamed = (name: string) => fleet.hosts.find((h) => h.name === name) as ResolvedHost;
const unfolded = (feed: string) => feed.replace(/\r\n /g, '').split('\r\n');

/** The VEVENT of `uid` as property -> value (first occurrence). */
function event(feed: string, host: string): Record<string, string> {
  const lines = unfolded(feed);
  const start = lines.findIndex((l, i) => l === `UID:window-${host}@${fleet.name}.upkeep` && lines[i - 1] === 'BEGIN:VEVENT');
  if (start < 0) throw new Error(`no event for ${host}`);
  const props: Record<string, string> = {};
  for (const line of lines.slice(start, lines.indexOf('END:VEVENT', start))) {
    const at = line.search(/[:;]/);
    props[line.slice(0, at)] ??= line.slice(at + 1);
  }
  return props;
}

describe('the maintenance window calendar', () => {
  const feed = renderWindowCalendar({ fleet });

  it('is an RFC 5545 calendar: CRLF lines of at most 75 octets, balanced components, a VTIMEZONE for each zone used', () => {
    expect(feed.startsWith('BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:')).toBe(true);
    expect(feed.endsWith('END:VCALENDAR\r\n')).toBe(true);
    expect(feed.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
    for (const line of feed.split('\r\n')) expect(Buffer.byteLength(line)).toBeLessThanOrEqual(75);
    const lines = unfolded(feed);
    const depth = lines.reduce((d, l) => (d < 0 ? d : l.startsWith('BEGIN:') ? d + 1 : l.startsWith('END:') ? d - 1 : d), 0);
    expect(depth).toBe(0);
    expect(lines.filter((l) => l === 'BEGIN:VTIMEZONE')).toHaveLength(1);
    expect(lines).toContain('TZID:Europe/Berlin');
    // Berlin changes to summer time on the last Sunday of March 2026 at 02:00 local.
    expect(feed).toContain('BEGIN:DAYLIGHT\r\nDTSTART:20260329T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200');
  });

  it('has one recurring event per host with updates, on its window: zone, start, duration, rule, blackout dates', () => {
    const hostsWithUpdates = fleet.hosts.filter((h) => h.updates).map((h) => h.name);
    expect(unfolded(feed).filter((l) => l === 'BEGIN:VEVENT')).toHaveLength(hostsWithUpdates.length);
    const backup1 = event(feed, 'backup1');
    // The first Sunday of 2026 is January 4th.
    expect(backup1.DTSTART).toBe('TZID=Europe/Berlin:20260104T020000');
    expect(backup1.DURATION).toBe('PT2H');
    expect(backup1.RRULE).toBe('FREQ=WEEKLY;BYDAY=SU');
    expect(unfolded(feed).filter((l) => l.startsWith('EXDATE;TZID=Europe/Berlin:202612'))).toContain('EXDATE;TZID=Europe/Berlin:20261220T020000');
    const mail1 = event(feed, 'mail1');
    // First Wednesday of the month, 22:00 UTC for 4 h: 2026-01-07.
    expect(mail1.DTSTART).toBe('20260107T220000Z');
    expect(mail1.RRULE).toBe('FREQ=MONTHLY;BYDAY=1WE');
    expect(mail1.DURATION).toBe('PT4H');
    expect(mail1.DESCRIPTION).toContain('It reboots in every window');
  });

  it('is the same bytes on every run, with a fixed DTSTAMP', () => {
    expect(renderWindowCalendar({ fleet })).toBe(feed);
    expect(renderWindowCalendar({ fleet, previous: feed })).toBe(feed);
    expect(new Set(unfolded(feed).filter((l) => l.startsWith('DTSTAMP:')))).toEqual(new Set(['DTSTAMP:20260101T000000Z']));
  });

  it('bumps SEQUENCE of exactly the events that changed, once per change, and keeps UIDs', () => {
    const moved = resolvedFleet([{ ...hostNamed('backup1'), updates: { ...hostNamed('backup1').updates!, window: { ...sundayWindow, startMinute: 180 } } }]);
    const next = renderWindowCalendar({ fleet: moved, previous: feed });
    expect(event(next, 'backup1').SEQUENCE).toBe('1');
    expect(event(next, 'backup1').DTSTART).toBe('TZID=Europe/Berlin:20260104T030000');
    expect(event(next, 'mail1').SEQUENCE).toBe('0');
    // Planned again against the new feed: nothing changed, nothing bumped.
    expect(renderWindowCalendar({ fleet: moved, previous: next })).toBe(next);
    // A pending reboot is news for the customer too.
    const pending = renderWindowCalendar({ fleet: moved, previous: next, rebootPending: new Map([['backup1', true]]) });
    expect(event(pending, 'backup1').SEQUENCE).toBe('2');
    expect(event(pending, 'backup1').SUMMARY).toBe('Maintenance window: backup1 (reboot pending)');
  });

  it('keeps a host that left the fleet as a cancelled event, bumped once', () => {
    const without = { ...fleet, hosts: fleet.hosts.filter((h) => h.name !== 'backup1') };
    const next = renderWindowCalendar({ fleet: without, previous: feed });
    expect(event(next, 'backup1').STATUS).toBe('CANCELLED');
    expect(event(next, 'backup1').SEQUENCE).toBe('1');
    expect(renderWindowCalendar({ fleet: without, previous: next })).toBe(next);
  });

  it('escapes text from the policy (commas, semicolons, backslashes, newlines)', () => {
    const odd = { ...fleet, name: 'shop; north, "x"\\y' };
    const text = unfolded(renderWindowCalendar({ fleet: odd }));
    expect(text).toContain('X-WR-CALNAME:shop\\; north\\, "x"\\\\y: maintenance windows');
  });

  describe('as upkeep update writes it: the plan\'s feed with the pending reboots the wave saw', () => {
    const hosts = new Map<string, CalendarHost>(fleet.hosts.filter((h) => h.updates).map((h) => [h.name, { name: h.name, group: h.group, reboot: h.updates!.reboot }]));
    const update = (plan: string, rebootPending: Map<string, boolean>, previous?: string) => withRebootPending({ fleet: fleet.name, plan, hosts, rebootPending, ...(previous !== undefined && { previous }) });

    it('bumps SEQUENCE of exactly the hosts whose pending reboot changed, says so, and keeps the windows and UIDs', () => {
      const seen = update(feed, new Map([['backup1', true], ['mail1', false]]));
      expect(event(seen, 'backup1')).toMatchObject({ SEQUENCE: '1', SUMMARY: 'Maintenance window: backup1 (reboot pending)', DTSTART: event(feed, 'backup1').DTSTART, RRULE: event(feed, 'backup1').RRULE });
      expect(event(seen, 'backup1').DESCRIPTION).toContain('a reboot is pending and will happen in the next window.');
      expect(event(seen, 'mail1').SEQUENCE).toBe('1');
      expect(event(seen, 'mail1').DESCRIPTION).toContain('no reboot is pending.');
      // A host the wave did not read keeps its event as it was.
      const unread = [...hosts.keys()].filter((h) => h !== 'backup1' && h !== 'mail1');
      expect(unread.length).toBeGreaterThan(0);
      for (const host of unread) expect(event(seen, host)).toEqual(event(feed, host));
      expect(unfolded(seen).filter((l) => l.startsWith('EXDATE'))).toEqual(unfolded(feed).filter((l) => l.startsWith('EXDATE')));
      expect(seen.slice(0, seen.indexOf('BEGIN:VEVENT'))).toBe(feed.slice(0, feed.indexOf('BEGIN:VEVENT')));
      // The same answers again: nothing bumped, the same bytes. The reboot done: bumped once more.
      expect(update(feed, new Map([['backup1', true], ['mail1', false]]), seen)).toBe(seen);
      const done = update(feed, new Map([['backup1', false]]), seen);
      expect(event(done, 'backup1')).toMatchObject({ SEQUENCE: '2', SUMMARY: 'Maintenance window: backup1' });
      // mail1, not read this time, keeps what the published feed said of it.
      expect(event(done, 'mail1')).toEqual(event(seen, 'mail1'));
    });

    it('gives the bytes bin/plan --live writes for the same answers', () => {
      const answers = new Map(fleet.hosts.filter((h) => h.updates).map((h, i) => [h.name, i % 2 === 0]));
      expect(update(feed, answers)).toBe(renderWindowCalendar({ fleet, previous: feed, rebootPending: answers }));
      // Through a feed published elsewhere (its own SEQUENCE history), too.
      const published = renderWindowCalendar({ fleet, previous: update(feed, new Map([['backup1', true]])) });
      expect(update(feed, answers, published)).toBe(renderWindowCalendar({ fleet, previous: published, rebootPending: answers }));
    });

    it('keeps the plan\'s cancelled hosts cancelled, and cancels a host the published feed has but the plan no longer does', () => {
      const without = { ...fleet, hosts: fleet.hosts.filter((h) => h.name !== 'backup1') };
      const plan = renderWindowCalendar({ fleet: without, previous: feed });
      const seen = update(plan, new Map([['mail1', true]]));
      expect(event(seen, 'backup1')).toEqual(event(plan, 'backup1'));
      expect(event(seen, 'backup1').STATUS).toBe('CANCELLED');
      const elsewhere = update(plan, new Map([['mail1', true]]), feed);
      expect(event(elsewhere, 'backup1')).toMatchObject({ STATUS: 'CANCELLED', SEQUENCE: '1' });
    });
  });
});
