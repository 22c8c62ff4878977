// How `upkeep status` judges what hosts recorded against the contract, without hosts: facts are
// written as lib/runtime/status-facts.sh prints them and parsed by the same parser, so the line
// format is covered too. The fleet test (test/fleet/status.test.ts) proves the same on real hosts.

import { describe, expect, it } from 'vitest';
import { checkUnitName } from '../../lib/compile/monitoring.ts';
import { parseHostFacts, type HostFactsResult } from '../../lib/hosts/host-facts.ts';
import type { ResolvedFleet } from '../../lib/policy/resolved.ts';
import { renderStatusHtml } from '../../lib/status/status-html.ts';
import { renderStatusMarkdown } from '../../lib/status/status-markdown.ts';
import { buildStatusReport, type StatusReport } from '../../lib/status/status-report.ts';
import { resolvedFleet } from '../fixtures/resolved-fleet.ts';

const NOW = Date.UTC(2026, 10, 30, 12, 0, 0) / 1000;
const HOUR = 3600;
const DAY = 86_400;
const fleet: ResolvedFleet = resolvedFleet();
const generation = (host: string) => `gen-${host}`;
const plan = {
  fleet: fleet.name,
  plan_id: 'f'.repeat(64),
  hosts: Object.fromEntries(fleet.hosts.map((h) => [h.name, { generation: generation(h.name) }])),
} as unknown as Parameters<typeof buildStatusReport>[0]['plan'];

/** The facts script's output of a host that keeps every promise, with `edit` applied to its lines. */
function factsText(host: string, edit: (lines: string[]) => string[] = (l) => l): string {
  const lines = [
    'facts 1',
    `now ${NOW}`,
    `generation ${generation(host)}`,
    `plan ${'f'.repeat(64)}`,
    `routine-run ${NOW - 3 * DAY} 2026-11-27 02:00`,
    `backup backup ${NOW - 5 * HOUR} ok snapshot saved`,
    `backup check ${NOW - 2 * DAY} ok read back 5% of the data`,
    `backup drill ${NOW - 3 * DAY} ok restored and verified 20 files`,
  ];
  for (const subject of fleet.hosts) {
    for (const check of subject.monitoring?.checks ?? []) {
      if (check.runsOn !== host) continue;
      const id = checkUnitName(check).slice('upkeep-check-'.length);
      lines.push(`check ${id} ${NOW - 30} ok ${NOW - 5 * DAY} 0 0`, `check-message ${id} OK: fine`);
    }
  }
  return `${edit(lines).join('\n')}\n`;
}

function report(edits: Record<string, (lines: string[]) => string[]> = {}, unreachable: string[] = []): StatusReport {
  const facts: Record<string, HostFactsResult> = {};
  for (const h of fleet.hosts) facts[h.name] = unreachable.includes(h.name) ? { host: h.name, error: 'ssh: connect to host 203.0.113.40 port 22: Connection refused' } : parseHostFacts(h.name, factsText(h.name, edits[h.name]));
  return buildStatusReport({ fleet, plan, facts, now: NOW, periodSeconds: 7 * DAY });
}

/** "host:item" of every cell out of contract. */
function outCells(r: StatusReport): string[] {
  return r.hosts.flatMap((h) => (['generation', 'updates', 'backups', 'monitoring'] as const).filter((i) => h[i].state === 'out').map((i) => `${h.host}:${i}`));
}

const replace = (prefix: string, line: string | null) => (lines: string[]) => lines.flatMap((l) => (l.startsWith(prefix) ? (line === null ? [] : [line]) : [l]));

describe('upkeep status judges the recorded facts against the contract', () => {
  it('finds a fleet that keeps every promise in contract', () => {
    const r = report();
    expect(outCells(r)).toEqual([]);
    expect(r.in_contract).toBe(true);
    expect(r.summary).toEqual({ hosts: fleet.hosts.length, in_contract: fleet.hosts.length, out_of_contract: 0, unreachable: 0 });
    const web1 = r.hosts.find((h) => h.host === 'web1')!;
    expect(web1.updates.security).toEqual({ state: 'ok', pending: 0, first_seen_at: null, age_seconds: null, deadline_seconds: 86400 });
    expect(web1.backups.snapshot).toMatchObject({ state: 'ok', age_seconds: 5 * HOUR, max_age_seconds: 26 * HOUR, detail: 'snapshot saved' });
    // web1's site check runs on monitor1: its state comes from monitor1's facts.
    expect(web1.monitoring.checks.find((c) => c.name === 'site')).toMatchObject({ runs_on: 'monitor1', state: 'ok', severity: 'ok', message: 'OK: fine' });
  });

  it('a stale backup puts the host out of contract, naming its age and the limit', () => {
    const r = report({ web1: replace('backup backup ', `backup backup ${NOW - 3 * DAY} ok snapshot saved`) });
    expect(outCells(r)).toEqual(['web1:backups']);
    expect(r.hosts.find((h) => h.host === 'web1')!.problems).toEqual(['last backup snapshot is 3 d old (limit 26 h)']);
    expect(r.in_contract).toBe(false);
  });

  it('a backup that failed, or none recorded, is out of contract; a repository check not yet recorded is unknown', () => {
    expect(outCells(report({ web1: replace('backup backup ', `backup backup ${NOW - HOUR} failed restic backup exited 1`) }))).toEqual(['web1:backups']);
    expect(outCells(report({ web1: replace('backup backup ', null) }))).toEqual(['web1:backups']);
    const noCheck = report({ web1: replace('backup check ', null) });
    expect(outCells(noCheck)).toEqual([]);
    expect(noCheck.hosts.find((h) => h.host === 'web1')!.backups).toMatchObject({ state: 'unknown', repository_check: { state: 'unknown', at: null } });
  });

  it('a failed restore drill is out of contract', () => {
    expect(outCells(report({ web1: replace('backup drill ', `backup drill ${NOW - DAY} failed 2 of 20 sampled files were not restored`) }))).toEqual(['web1:backups']);
  });

  it('security fixes pending past the deadline are out of contract; within it they are not', () => {
    const late = report({ web1: (l) => [...l, `security-pending ${NOW - 30 * HOUR} 3`] });
    expect(outCells(late)).toEqual(['web1:updates']);
    expect(late.hosts.find((h) => h.host === 'web1')!.problems).toEqual(['3 security fix(es) pending for 30 h (deadline 24 h)']);
    const recent = report({ web1: (l) => [...l, `security-pending ${NOW - 2 * HOUR} 3`] });
    expect(outCells(recent)).toEqual([]);
    expect(recent.hosts.find((h) => h.host === 'web1')!.updates.security).toMatchObject({ state: 'ok', pending: 3, age_seconds: 2 * HOUR });
  });

  it('pending fixes are unknown, not out of contract, until the security-updates check (here named "security") has run', () => {
    const r = report({ web1: replace('check web1-security ', null) });
    expect(outCells(r)).toEqual([]);
    expect(r.hosts.find((h) => h.host === 'web1')!.updates.security).toMatchObject({ state: 'unknown', pending: null });
  });

  it('routine updates missed for longer than a window period, and a reboot pending past the next window, are out of contract', () => {
    expect(outCells(report({ web1: replace('routine-run ', `routine-run ${NOW - 9 * DAY} 2026-11-15 02:00`) }))).toEqual(['web1:updates']);
    expect(outCells(report({ web1: (l) => [...l, `reboot-pending-since ${NOW - 9 * DAY}`] }))).toEqual(['web1:updates']);
    expect(outCells(report({ web1: (l) => [...l, `reboot-pending-since ${NOW - 2 * DAY}`] }))).toEqual([]);
    // monitor1 never reboots by policy: a pending reboot is reported, not judged.
    expect(outCells(report({ monitor1: (l) => [...l, `reboot-required ${NOW - 30 * DAY}`] }))).toEqual([]);
  });

  it('a critical check is out of contract; a warning is not; the time to alert is measured from the first failing run', () => {
    const id = 'web1-failed-units';
    const failing = report({ web1: (l) => [...replace(`check ${id} `, `check ${id} ${NOW - 20} critical ${NOW - 200} 4 1`)(l), `alert ${NOW - 140} ${id} firing`] });
    expect(outCells(failing)).toEqual(['web1:monitoring']);
    expect(failing.hosts.find((h) => h.host === 'web1')!.monitoring.checks.find((c) => c.id === id)).toMatchObject({ state: 'out', severity: 'critical', since: NOW - 200, alerts_in_period: 1, time_to_alert_seconds: 60, sla_seconds: 900 });
    const warning = report({ web1: replace(`check ${id} `, `check ${id} ${NOW - 20} warning ${NOW - 200} 4 1`) });
    expect(outCells(warning)).toEqual([]);
  });

  it('a failing check that sent no alert within the SLA says so', () => {
    const id = 'web1-failed-units';
    const r = report({ web1: replace(`check ${id} `, `check ${id} ${NOW - 20} critical ${NOW - 2 * HOUR} 120 0`) });
    expect(r.hosts.find((h) => h.host === 'web1')!.problems).toEqual(['check failed-units is critical since 2 h ago', 'check failed-units: no alert sent within the SLA (15 min)']);
  });

  it('a check that stopped running is out of contract', () => {
    const id = 'web1-smart';
    const r = report({ web1: replace(`check ${id} `, `check ${id} ${NOW - 2 * HOUR} ok ${NOW - 5 * DAY} 0 0`) });
    expect(outCells(r)).toEqual(['web1:monitoring']);
    expect(r.hosts.find((h) => h.host === 'web1')!.problems).toEqual(['check smart has not run for 2 h (every 60 s)']);
  });

  it('a host on another generation than the plan is out of contract', () => {
    const r = report({ web1: replace('generation ', 'generation gen-older') });
    expect(outCells(r)).toEqual(['web1:generation']);
    expect(r.hosts.find((h) => h.host === 'web1')!.generation).toEqual({ state: 'out', host: 'gen-older', plan: 'gen-web1' });
  });

  it('an unreachable host is out of contract, and so are the checks it runs for others unknown', () => {
    const r = report({}, ['monitor1']);
    expect(outCells(r)).toEqual(['monitor1:generation']);
    expect(r.summary.unreachable).toBe(1);
    const web1 = r.hosts.find((h) => h.host === 'web1')!;
    expect(web1.monitoring.checks.find((c) => c.name === 'site')).toMatchObject({ state: 'unknown', severity: null });
    expect(web1.monitoring.state).toBe('unknown');
    expect(r.hosts.find((h) => h.host === 'monitor1')!.problems).toEqual(['unreachable: ssh: connect to host 203.0.113.40 port 22: Connection refused']);
  });

  it('lists the coming maintenance windows in order', () => {
    const windows = report().windows;
    expect(windows.length).toBeGreaterThan(0);
    expect(windows.map((w) => w.opens_at)).toEqual([...windows.map((w) => w.opens_at)].sort((a, b) => a - b));
    // Sunday 2026-12-06 02:00 Europe/Berlin is 01:00 UTC.
    expect(windows.filter((w) => w.host === 'web1')[0]).toEqual({ host: 'web1', opens_at: Date.UTC(2026, 11, 6, 1) / 1000, closes_at: Date.UTC(2026, 11, 6, 3) / 1000, time_zone: 'Europe/Berlin' });
  });

  it('keeps its documented JSON field names', () => {
    const r = report();
    expect(Object.keys(r)).toEqual(['format_version', 'fleet', 'plan_id', 'generated_at', 'period_seconds', 'in_contract', 'summary', 'hosts', 'windows']);
    const h = r.hosts.find((x) => x.host === 'web1')!;
    expect(Object.keys(h)).toEqual(['host', 'group', 'reachable', 'error', 'in_contract', 'problems', 'generation', 'updates', 'backups', 'monitoring']);
    expect(Object.keys(h.updates)).toEqual(['state', 'exempt', 'routine', 'security', 'reboot']);
    expect(Object.keys(h.backups)).toEqual(['state', 'exempt', 'snapshot', 'repository_check', 'restore_drill']);
    expect(Object.keys(h.monitoring.checks[0]!)).toEqual(['name', 'id', 'kind', 'runs_on', 'sla_seconds', 'state', 'severity', 'since', 'last_run_at', 'message', 'alerts_in_period', 'time_to_alert_seconds']);
  });
});

describe('the status pages show host text as text', () => {
  const HOSTILE = `<img src=x onerror=alert(1)>](javascript:x) @oncall \`x\` | "q" 'a'`;
  const hostile = report({
    web1: (l) => [...replace('check-message web1-smart ', `check-message web1-smart ${HOSTILE}`)(l)],
    mail1: replace('backup backup ', `backup backup ${NOW - 3 * DAY} ok ${HOSTILE}`),
  });

  it('in HTML: no markup from a host, red cells marked for the eye', () => {
    const html = renderStatusHtml(hostile);
    expect(html).not.toContain('<img');
    expect(html).toContain('&#60;img src=x onerror=alert(1)&#62;');
    expect(html).toContain(`<td class="state-out" data-host="mail1" data-item="backups">OUT OF CONTRACT</td>`);
    expect([...html.matchAll(/class="state-out" data-host="([^"]+)" data-item="([^"]+)"/g)].map((m) => `${m[1]}:${m[2]}`)).toEqual(['mail1:backups']);
    expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`);
    expect(html).not.toMatch(/<script|<link|src="http/);
  });

  it('in markdown: no markup, no link, no mention', () => {
    const md = renderStatusMarkdown(hostile);
    expect(md).not.toContain('<img');
    expect(md).not.toContain('](javascript');
    expect(md).not.toMatch(/@oncall/);
    expect(md).toContain('| mail1 | production | ok | ok | **OUT OF CONTRACT** | ok |');
    expect(md).toContain('**1 of 5 hosts out of contract**');
  });
});
