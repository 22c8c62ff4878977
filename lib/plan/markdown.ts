// plan.md: the review text for a pull request. The summary comes first and always survives;
// per-host details sit in <details> folds, cut (and said so) when the text would not fit a
// GitHub comment.

import { mitigationWrites } from '../compile/updates.ts';
import { formatDuration } from '../policy/duration.ts';
import type { ResolvedFleet } from '../policy/resolved.ts';
import type { PlanDocument, PlannedHost } from './plan-format.ts';
import { hasChanges } from './build-plan.ts';
import { mdCode, mdText } from './markdown-text.ts';

/** GitHub comments hold at most 65,536 characters; leave room for a wrapper around ours. */
export const MARKDOWN_LIMIT = 60_000;

function secretLabel(ref: NonNullable<PlannedHost['files'][number]['secret']>): string {
  const from = 'env' in ref ? `env ${mdCode(ref.env, true)}` : `file ${mdCode(ref.file, true)}`;
  return ref.derive === undefined ? `secret from ${from}` : `secret derived for ${mdCode(ref.derive, true)} from ${from}`;
}

function hostDetails(host: PlannedHost): string {
  const c = host.changes;
  const byAction = (a: string) => c.files.filter((f) => f.action === a).length;
  const title = `${mdText(host.name)} (${mdText(host.group)}): ${byAction('create')} to create, ${byAction('update')} to update, ${byAction('delete')} to delete`;
  const files = new Map(host.files.map((f) => [f.path, f]));
  const rows = c.files.map((ch) => {
    const f = files.get(ch.path);
    const what = f?.secret ? secretLabel(f.secret) : f?.sha256 ? `sha256 ${f.sha256.slice(0, 12)}` : '';
    const fields = ch.fields ? ` (${ch.fields.join(', ')})` : '';
    return `| ${ch.action}${fields} | ${mdCode(ch.path, true)} | ${mdText(f?.mode ?? '')} | ${mdText(f?.owner ?? '')} | ${what} |`;
  });
  const lines = [`<details><summary>${title}</summary>`, ''];
  if (rows.length > 0) lines.push('| action | path | mode | owner | content |', '|---|---|---|---|---|', ...rows, '');
  if (c.unitsEnabled.length > 0) lines.push(`Units to enable: ${c.unitsEnabled.map((u) => mdCode(u)).join(', ')}`, '');
  if (c.unitsDisabled.length > 0) lines.push(`Units to disable: ${c.unitsDisabled.map((u) => mdCode(u)).join(', ')}`, '');
  if (c.packagesAdded.length > 0) lines.push(`Packages to install: ${c.packagesAdded.map(mdText).join(', ')}`, '');
  lines.push(`Generation ${mdCode(host.generation.slice(0, 12))} (from ${host.baseGeneration ? mdCode(host.baseGeneration.slice(0, 12)) : 'nothing applied'})`, '', '</details>', '');
  return lines.join('\n');
}

function rollout(plan: PlanDocument): string[] {
  return plan.groups.map((g, i) => {
    const traits = [
      g.staging ? 'staging' : undefined,
      g.after.length > 0 ? `after ${g.after.map(mdText).join(', ')}` : undefined,
      `soak ${formatDuration(g.soakSeconds)}`,
      `batches of ${g.batchSize}`,
      `failure budget ${g.failureBudget}`,
    ].filter(Boolean);
    return `${i + 1}. **${mdText(g.name)}** (${traits.join(', ')}): ${g.hosts.map(mdText).join(', ')}`;
  });
}

/**
 * The plan.md section that lists every declared mitigation and every path it may write on its
 * host (outside upkeep's own files, which the host tables show), or undefined when there is none.
 */
export function renderMitigationSection(fleet: ResolvedFleet): string | undefined {
  const lines = fleet.hosts.flatMap((host) =>
    (host.updates?.mitigations ?? []).map((m) => {
      const writes = mitigationWrites(m);
      const until = m.fixedIn ? `until ${mdText(m.package)} ${mdText(m.fixedIn)}` : `until ${mdText(m.package)} is fixed`;
      return `- ${mdText(host.name)}: ${mdCode(m.id)} ${m.action.kind} ${until}; writes ${writes.length > 0 ? writes.map((w) => mdCode(w)).join(', ') : 'no file'}`;
    }),
  );
  if (lines.length === 0) return undefined;
  return ['## Mitigations', '', 'Applied while their fix is missing, reverted once it is installed:', '', ...lines, ''].join('\n');
}

/** The review text; `sections` (infrastructure, drift) go between the rollout order and the hosts. */
export function renderPlanMarkdown(plan: PlanDocument, sections: readonly string[] = []): string {
  const s = plan.summary;
  const head = [
    `# upkeep plan: ${mdText(plan.fleet)}`,
    '',
    `**${s.hostsChanged} host(s) to change, ${s.hostsUnchanged} unchanged** · ${s.filesCreated} file(s) to create, ${s.filesUpdated} to update, ${s.filesDeleted} to delete · plan ${mdCode(plan.plan_id.slice(0, 12))}`,
    '',
    '## Rollout order',
    '',
    ...rollout(plan),
    '',
    ...sections.flatMap((section) => [section.trimEnd(), '']),
    '## Hosts',
    '',
  ].join('\n');
  const changed = Object.values(plan.hosts).filter(hasChanges);
  let body = '';
  let shown = 0;
  for (const host of changed) {
    const details = hostDetails(host);
    if (head.length + body.length + details.length > MARKDOWN_LIMIT) break;
    body += details;
    shown++;
  }
  if (changed.length === 0) body = 'No host changes.\n';
  if (shown < changed.length) body += `\n_Truncated: ${changed.length - shown} more host(s) with changes are not shown here; plan.json lists every change._\n`;
  return `${head}${body}`;
}
