// The status report as one static, self-contained HTML page: a fleet matrix (hosts by generation,
// updates, backups, monitoring) where a cell out of contract is red, the problems, each host's
// details and the coming maintenance windows. No script, no external resource; every value from
// the policy or a host is escaped, and the page's Content-Security-Policy forbids scripts anyway.

import type { HostStatus, ItemState, StatusReport } from './status-report.ts';
import { age, jobText, STATE_WORD, when } from './status-text.ts';

/** `value` as HTML text (also safe inside a quoted attribute). */
export function htmlText(value: string | number): string {
  return String(value).replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

const ITEMS = ['generation', 'updates', 'backups', 'monitoring'] as const;

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #1a1a1a; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: .35em .7em; text-align: left; vertical-align: top; }
td.state-ok { background: #e8f5e9; color: #1b5e20; }
td.state-out { background: #c62828; color: #fff; font-weight: bold; }
td.state-unknown { background: #fff8e1; color: #6d4c00; }
td.state-exempt { background: #eceff1; color: #37474f; }
.verdict-out { color: #c62828; }
.verdict-ok { color: #1b5e20; }
li.problem { color: #b71c1c; }
`;

function stateCell(state: ItemState, text: string, attrs: string): string {
  return `<td class="state-${state}" ${attrs}>${htmlText(text)}</td>`;
}

function detailRows(h: HostStatus): string[] {
  const rows: [string, ItemState, string][] = [['generation', h.generation.state, `host ${h.generation.host ?? 'none'}, plan ${h.generation.plan}`]];
  const u = h.updates;
  if (u.state === 'exempt') rows.push(['updates', 'exempt', `exempt: ${u.exempt ?? ''}`]);
  else {
    rows.push(['routine updates', u.routine.state, `last run ${when(u.routine.last_run_at)}${u.routine.window_opening ? `, inside the window that opened ${u.routine.window_opening}` : ''}`]);
    rows.push(['security fixes pending', u.security.state, `${u.security.pending ?? 'unknown'}${u.security.first_seen_at !== null ? `, first seen ${age(u.security.age_seconds)} ago, deadline ${age(u.security.deadline_seconds)}` : ''}`]);
    rows.push(['reboot pending', u.reboot.state, u.reboot.pending === null ? 'unknown' : u.reboot.pending ? `since ${when(u.reboot.since)}` : 'no']);
  }
  const b = h.backups;
  if (b.state === 'exempt') rows.push(['backups', 'exempt', `exempt: ${b.exempt ?? ''}`]);
  else {
    rows.push(['last snapshot', b.snapshot.state, jobText(b.snapshot)]);
    rows.push(['last repository check', b.repository_check.state, jobText(b.repository_check)]);
    rows.push(['last restore drill', b.restore_drill.state, jobText(b.restore_drill)]);
  }
  if (h.monitoring.state === 'exempt') rows.push(['monitoring', 'exempt', `exempt: ${h.monitoring.exempt ?? ''}`]);
  for (const c of h.monitoring.checks) {
    const toAlert = c.time_to_alert_seconds === null ? '' : `, alerted after ${age(c.time_to_alert_seconds)} (SLA ${age(c.sla_seconds)})`;
    rows.push([
      `check ${c.name}${c.runs_on === h.host ? '' : ` (on ${c.runs_on})`}`,
      c.state,
      `${c.severity ?? 'never ran'}${c.since !== null ? ` since ${when(c.since)}` : ''}, ${c.alerts_in_period} alert(s) in the period${toAlert}${c.message ? `: ${c.message}` : ''}`,
    ]);
  }
  return rows.map(([what, state, text]) => `<tr><th>${htmlText(what)}</th>${stateCell(state, `${STATE_WORD[state]}: ${text}`, `data-host="${htmlText(h.host)}" data-detail="${htmlText(what)}"`)}</tr>`);
}

export function renderStatusHtml(report: StatusReport): string {
  const s = report.summary;
  const verdict = report.in_contract ? `All ${s.hosts} hosts keep the contract.` : `${s.out_of_contract} of ${s.hosts} hosts out of contract${s.unreachable > 0 ? ` (${s.unreachable} unreachable)` : ''}.`;
  const matrix = report.hosts.map(
    (h) =>
      `<tr><th data-host="${htmlText(h.host)}">${htmlText(h.host)}</th><td>${htmlText(h.group)}</td>${ITEMS.map((item) => stateCell(h[item].state, STATE_WORD[h[item].state], `data-host="${htmlText(h.host)}" data-item="${item}"`)).join('')}</tr>`,
  );
  const problems = report.hosts.flatMap((h) => h.problems.map((p) => `<li class="problem">${htmlText(h.host)}: ${htmlText(p)}</li>`));
  const hosts = report.hosts.map((h) => `<h3 id="host-${htmlText(h.host)}">${htmlText(h.host)}</h3>${h.error ? `<p>unreachable: ${htmlText(h.error)}</p>` : ''}<table>${detailRows(h).join('')}</table>`);
  const windows = report.windows.map((w) => `<tr><td>${htmlText(when(w.opens_at))}</td><td>${htmlText(when(w.closes_at))}</td><td>${htmlText(w.host)}</td><td>${htmlText(w.time_zone)}</td></tr>`);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>upkeep status: ${htmlText(report.fleet)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>upkeep status: ${htmlText(report.fleet)}</h1>
<p id="verdict" class="verdict-${report.in_contract ? 'ok' : 'out'}">${htmlText(verdict)}</p>
<p>Plan ${htmlText(report.plan_id.slice(0, 12))}, ${htmlText(when(report.generated_at))}; alerts counted over the last ${htmlText(age(report.period_seconds))}.</p>
<h2>Fleet</h2>
<table id="matrix">
<tr><th>host</th><th>group</th>${ITEMS.map((i) => `<th>${i}</th>`).join('')}</tr>
${matrix.join('\n')}
</table>
${problems.length > 0 ? `<h2>Out of contract</h2>\n<ul id="problems">\n${problems.join('\n')}\n</ul>` : ''}
<h2>Coming maintenance windows</h2>
${windows.length > 0 ? `<table id="windows">\n<tr><th>opens</th><th>closes</th><th>host</th><th>time zone</th></tr>\n${windows.join('\n')}\n</table>` : '<p>None in the next 35 days.</p>'}
<h2>Hosts</h2>
${hosts.join('\n')}
</body>
</html>
`;
}
