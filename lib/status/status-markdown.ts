// The status report as markdown (the default output of `upkeep status`, and what a pipeline posts):
// a fleet line, a table of hosts, the problems, then each host's details. Every value from the
// policy or a host goes through mdText/mdCode, as in plan.md.

import { mdCode, mdText } from '../plan/markdown-text.ts';
import type { HostStatus, StatusReport } from './status-report.ts';
import { age, jobText, STATE_WORD, when } from './status-text.ts';

function cell(state: keyof typeof STATE_WORD): string {
  return state === 'out' ? `**${STATE_WORD[state]}**` : STATE_WORD[state];
}

function hostSection(h: HostStatus): string[] {
  const u = h.updates;
  const b = h.backups;
  const lines = [`### ${mdText(h.host)} (${mdText(h.group)}): ${h.in_contract ? 'in contract' : '**out of contract**'}`, ''];
  if (h.error) lines.push(`- unreachable: ${mdText(h.error)}`);
  lines.push(`- generation: host ${h.generation.host ? mdCode(h.generation.host.slice(0, 12)) : 'none'}, plan ${mdCode(h.generation.plan.slice(0, 12))} (${cell(h.generation.state)})`);
  if (u.state === 'exempt') lines.push(`- updates: exempt${u.exempt ? `: ${mdText(u.exempt)}` : ''}`);
  else {
    lines.push(`- routine updates: last run ${when(u.routine.last_run_at)}${u.routine.window_opening ? ` in the window that opened ${mdText(u.routine.window_opening)}` : ''} (${cell(u.routine.state)})`);
    const sec = u.security;
    lines.push(`- security fixes pending: ${sec.pending === null ? 'unknown' : sec.pending}${sec.first_seen_at !== null ? `, first seen ${age(sec.age_seconds)} ago, deadline ${age(sec.deadline_seconds)}` : ''} (${cell(sec.state)})`);
    lines.push(`- reboot pending: ${u.reboot.pending === null ? 'unknown' : u.reboot.pending ? `since ${when(u.reboot.since)}` : 'no'} (${cell(u.reboot.state)})`);
  }
  if (b.state === 'exempt') lines.push(`- backups: exempt${b.exempt ? `: ${mdText(b.exempt)}` : ''}`);
  else {
    lines.push(`- last snapshot: ${mdText(jobText(b.snapshot))} (${cell(b.snapshot.state)})`);
    lines.push(`- last repository check: ${mdText(jobText(b.repository_check))} (${cell(b.repository_check.state)})`);
    lines.push(`- last restore drill: ${mdText(jobText(b.restore_drill))} (${cell(b.restore_drill.state)})`);
  }
  if (h.monitoring.state === 'exempt') lines.push(`- monitoring: exempt${h.monitoring.exempt ? `: ${mdText(h.monitoring.exempt)}` : ''}`);
  for (const c of h.monitoring.checks) {
    const toAlert = c.time_to_alert_seconds === null ? '' : `, alerted after ${age(c.time_to_alert_seconds)} (SLA ${age(c.sla_seconds)})`;
    lines.push(
      `- check ${mdCode(c.name)}${c.runs_on === h.host ? '' : ` on ${mdText(c.runs_on)}`}: ${c.severity ?? 'never ran'}${c.since !== null ? ` since ${when(c.since)}` : ''}, ${c.alerts_in_period} alert(s) in the period${toAlert}${c.message ? `: ${mdText(c.message)}` : ''} (${cell(c.state)})`,
    );
  }
  return [...lines, ''];
}

export function renderStatusMarkdown(report: StatusReport): string {
  const s = report.summary;
  const lines = [
    `# upkeep status: ${mdText(report.fleet)}`,
    '',
    report.in_contract ? `**All ${s.hosts} hosts keep the contract.**` : `**${s.out_of_contract} of ${s.hosts} hosts out of contract**${s.unreachable > 0 ? ` (${s.unreachable} unreachable)` : ''}.`,
    '',
    `Plan ${mdCode(report.plan_id.slice(0, 12))}, ${when(report.generated_at)}; alerts counted over the last ${age(report.period_seconds)}.`,
    '',
    '| host | group | generation | updates | backups | monitoring |',
    '|---|---|---|---|---|---|',
    ...report.hosts.map((h) => `| ${mdText(h.host)} | ${mdText(h.group)} | ${cell(h.generation.state)} | ${cell(h.updates.state)} | ${cell(h.backups.state)} | ${cell(h.monitoring.state)} |`),
    '',
  ];
  const problems = report.hosts.flatMap((h) => h.problems.map((p) => `- ${mdText(h.host)}: ${mdText(p)}`));
  if (problems.length > 0) lines.push('## Out of contract', '', ...problems, '');
  lines.push('## Hosts', '', ...report.hosts.flatMap(hostSection));
  if (report.windows.length > 0) {
    lines.push('## Coming maintenance windows', '', ...report.windows.map((w) => `- ${when(w.opens_at)} to ${when(w.closes_at)}: ${mdText(w.host)} (${mdText(w.time_zone)})`), '');
  }
  return `${lines.join('\n')}`;
}
