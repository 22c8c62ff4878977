// plan.md: the review text for a pull request, posted as its comment. A hidden marker naming the
// fleet comes first (a bot finds and updates its one comment by it), then the summary, the
// contract diff and every warning, which always survive; the per-host details sit in <details>
// folds, one fold per set of identical changes (the same files changing on 9,998 hosts is one fold,
// the exceptions have their own), cut (and said so) when the text would not fit the comment.

import { mitigationWrites } from '../compile/mitigations.ts';
import { formatDuration } from '../policy/duration.ts';
import type { ResolvedFleet } from '../policy/resolved.ts';
import type { PlanDocument, PlannedHost } from './plan-format.ts';
import { hasChanges } from './build-plan.ts';
import { canonicalJson } from '../compile/canonical-json.ts';
import { renderContractSection, type ContractChange } from './contract-diff.ts';
import { cappedLines, cappedNames, COMPACT_LIST_ITEMS } from './markdown-list.ts';
import { mdCode, mdText } from './markdown-text.ts';

/** GitHub comments hold at most 65,536 characters; leave room for a wrapper around ours. */
export const MARKDOWN_LIMIT = 60_000;

/**
 * A part of plan.md between the rollout order and the hosts (infrastructure, mitigations, drift):
 * its text, or a function that gives it in full or, when the plan would not fit a comment,
 * `compact` (every headline, warning and count, long lists cut short).
 */
export type MarkdownSection = string | ((compact: boolean) => string | undefined);

export interface PlanMarkdownOptions {
  /** How the plan changes the maintenance promise against its base (diffContracts); shown first. */
  readonly contract?: readonly ContractChange[];
  readonly sections?: readonly MarkdownSection[];
}

/**
 * The first line of plan.md: an HTML comment GitHub does not show, the same for every plan of the
 * fleet, so a pipeline finds the one comment it posted on a pull request and updates it.
 */
export function stickyMarker(fleet: string): string {
  // mdText leaves no "<", ">" or "&": the name cannot end the comment.
  return `<!-- upkeep-plan fleet=${mdText(fleet)} -->`;
}

/** The one-line summary: plan.md shows it in bold, bin/plan prints it. */
export function summaryLine(plan: PlanDocument): string {
  const s = plan.summary;
  return `${s.hostsChanged} host(s) to change, ${s.hostsUnchanged} unchanged · ${s.filesCreated} file(s) to create, ${s.filesUpdated} to update, ${s.filesDeleted} to delete · plan ${mdCode(plan.plan_id.slice(0, 12))}`;
}

type SecretOf = NonNullable<PlannedHost['files'][number]['secret']>;

function secretLabel(ref: SecretOf): string {
  const from = 'env' in ref ? `env ${mdCode(ref.env, true)}` : `file ${mdCode(ref.file, true)}`;
  return ref.derive === undefined ? `secret from ${from}` : `secret derived for ${mdCode(ref.derive, true)} from ${from}`;
}

// Files and units named after their host (a check's timer, its env file) change alike on every
// host: the host's own name is replaced by a marker no path or unit name can hold.
const OWN_NAME = '\u0000host\u0000';
const generic = (text: string, host: PlannedHost) => text.replaceAll(host.name, OWN_NAME);
const own = (text: string, host: PlannedHost) => text.split(OWN_NAME).join(host.name);

/**
 * A secret derived for its host (a backup password: "upkeep restic repository web1") with the
 * host's name replaced: every host's first plan creates one, and the hosts still change alike.
 */
function genericSecret(secret: SecretOf, host: PlannedHost, name: string): SecretOf {
  return secret.derive === undefined ? secret : { ...secret, derive: secret.derive.split(host.name).join(name) };
}

/** What a host's changes look like apart from its name and its contents' hashes: equal for hosts that change alike. */
function changeShape(host: PlannedHost): string {
  const files = new Map(host.files.map((f) => [f.path, f]));
  // Compared only with the other hosts' shapes: any text that tells shapes apart will do, and one
  // JSON array (no objects to sort) is the cheapest to make for 10,000 hosts.
  return JSON.stringify([
    host.changes.files.map((ch) => {
      const f = files.get(ch.path);
      return [ch.action, ch.fields ?? null, generic(ch.path, host), f?.mode ?? '', f?.owner ?? '', f?.secret ? canonicalJson(genericSecret(f.secret, host, OWN_NAME)) : null];
    }),
    host.changes.unitsEnabled.map((u) => generic(u, host)),
    host.changes.unitsDisabled.map((u) => generic(u, host)),
    host.changes.packagesAdded,
  ]);
}

/** Hosts with changes, those that change alike together: the largest set first, single hosts (the exceptions) last. */
function alikeHosts(changed: readonly PlannedHost[]): PlannedHost[][] {
  const sets = new Map<string, PlannedHost[]>();
  for (const host of changed) {
    const shape = changeShape(host);
    const set = sets.get(shape) ?? [];
    set.push(host);
    sets.set(shape, set);
  }
  return [...sets.values()].sort((a, b) => b.length - a.length || (a[0]!.name < b[0]!.name ? -1 : 1));
}

function hostDetails(hosts: readonly PlannedHost[]): string {
  const host = hosts[0]!;
  const c = host.changes;
  const byAction = (a: string) => c.files.filter((f) => f.action === a).length;
  const counts = `${byAction('create')} to create, ${byAction('update')} to update, ${byAction('delete')} to delete`;
  const title =
    hosts.length === 1
      ? `${mdText(host.name)} (${mdText(host.group)}): ${counts}`
      : `The same changes on ${hosts.length} hosts (${cappedNames(hosts.map((h) => mdText(h.name)), 10)}): ${counts}`;
  // Looked up by path, not searched: a monitor running a check of every host of a large fleet
  // has tens of thousands of files, and a group as many hosts.
  const filesOf = hosts.map((h) => new Map(h.files.map((f) => [f.path, f])));
  const rows = c.files.map((ch) => {
    const path = generic(ch.path, host);
    const content = new Set(hosts.map((h, i) => filesOf[i]!.get(own(path, h))?.sha256 ?? ''));
    const f = filesOf[0]!.get(ch.path);
    const what = f?.secret ? secretLabel(hosts.length > 1 ? genericSecret(f.secret, host, '{host}') : f.secret) : content.size > 1 ? 'differs per host' : f?.sha256 ? `sha256 ${f.sha256.slice(0, 12)}` : '';
    const fields = ch.fields ? ` (${ch.fields.join(', ')})` : '';
    // A group shows the name-dependent part of a path as {host}.
    const shown = hosts.length > 1 ? path.split(OWN_NAME).join('{host}') : ch.path;
    return `| ${ch.action}${fields} | ${mdCode(shown, true)} | ${mdText(f?.mode ?? '')} | ${mdText(f?.owner ?? '')} | ${what} |`;
  });
  const lines = [`<details><summary>${title}</summary>`, ''];
  if (hosts.length > 1) lines.push(`Hosts: ${cappedNames(hosts.map((h) => mdText(h.name)), 200)}`, '');
  if (rows.length > 0) lines.push('| action | path | mode | owner | content |', '|---|---|---|---|---|', ...rows, '');
  const unit = (u: string) => mdCode(hosts.length > 1 ? generic(u, host).split(OWN_NAME).join('{host}') : u);
  if (c.unitsEnabled.length > 0) lines.push(`Units to enable: ${c.unitsEnabled.map(unit).join(', ')}`, '');
  if (c.unitsDisabled.length > 0) lines.push(`Units to disable: ${c.unitsDisabled.map(unit).join(', ')}`, '');
  if (c.packagesAdded.length > 0) lines.push(`Packages to install: ${c.packagesAdded.map(mdText).join(', ')}`, '');
  if (hosts.length === 1) {
    lines.push(`Generation ${mdCode(host.generation.slice(0, 12))} (from ${host.baseGeneration ? mdCode(host.baseGeneration.slice(0, 12)) : 'nothing applied'})`, '');
  }
  lines.push('</details>', '');
  return lines.join('\n');
}

function rollout(plan: PlanDocument, compact: boolean): string[] {
  return plan.groups.map((g, i) => {
    const traits = [
      g.staging ? 'staging' : undefined,
      g.after.length > 0 ? `after ${g.after.map(mdText).join(', ')}` : undefined,
      `soak ${formatDuration(g.soakSeconds)}`,
      `batches of ${g.batchSize}`,
      `failure budget ${g.failureBudget}`,
    ].filter(Boolean);
    const hosts = cappedNames(g.hosts.map(mdText), compact ? COMPACT_LIST_ITEMS : Infinity);
    return `${i + 1}. **${mdText(g.name)}** (${traits.join(', ')}): ${compact && g.hosts.length > COMPACT_LIST_ITEMS ? `${g.hosts.length} hosts: ` : ''}${hosts}`;
  });
}

/**
 * The plan.md section that lists every declared mitigation and every path it may write on its
 * host (outside upkeep's own files, which the host tables show), or undefined when there is none.
 */
export function renderMitigationSection(fleet: ResolvedFleet, compact = false): string | undefined {
  const lines = fleet.hosts.flatMap((host) =>
    (host.updates?.mitigations ?? []).map((m) => {
      const writes = mitigationWrites(m);
      const until = m.fixedIn ? `until ${mdText(m.package)} ${mdText(m.fixedIn)}` : `until ${mdText(m.package)} is fixed`;
      return `- ${mdText(host.name)}: ${mdCode(m.id)} ${m.action.kind} ${until}; writes ${writes.length > 0 ? writes.map((w) => mdCode(w)).join(', ') : 'no file'}`;
    }),
  );
  if (lines.length === 0) return undefined;
  return ['## Mitigations', '', 'Applied while their fix is missing, reverted once it is installed:', '', ...cappedLines(lines, compact, 'mitigation(s)'), ''].join('\n');
}

/**
 * The review text, at most MARKDOWN_LIMIT characters: the marker, the summary, the contract diff,
 * the rollout order, then `sections` (infrastructure, mitigations, drift), then the hosts' changes
 * as far as they fit. When the text up to the hosts would not fit, it is given compact (lists cut
 * short, every headline, warning and count kept).
 */
export function renderPlanMarkdown(plan: PlanDocument, options: PlanMarkdownOptions = {}): string {
  const headOf = (compact: boolean) =>
    [
      stickyMarker(plan.fleet),
      `# upkeep plan: ${mdText(plan.fleet)}`,
      '',
      `**${summaryLine(plan)}**`,
      '',
      ...[options.contract && renderContractSection(options.contract, compact)].filter((x): x is string => x !== undefined).flatMap((x) => [x.trimEnd(), '']),
      '## Rollout order',
      '',
      ...rollout(plan, compact),
      '',
      ...(options.sections ?? [])
        .map((section) => (typeof section === 'string' ? section : section(compact)))
        .filter((x): x is string => x !== undefined)
        .flatMap((section) => [section.trimEnd(), '']),
      '## Hosts',
      '',
    ].join('\n');
  // Room for the hosts' changes and the truncation note below (its three names escaped, at most 600 characters).
  const room = (head: string) => MARKDOWN_LIMIT - 600 - head.length;
  let head = headOf(false);
  if (room(head) < MARKDOWN_LIMIT / 4) head = headOf(true);
  if (room(head) < 0) {
    head = `${head.slice(0, MARKDOWN_LIMIT - 1000)}\n\n_Cut here: the rest does not fit a pull-request comment; plan.json holds the whole plan._\n\n## Hosts\n\n`;
  }
  const changed = Object.values(plan.hosts).filter(hasChanges);
  const sets = alikeHosts(changed);
  let body = '';
  // A fold too large for the room left is skipped, not the end: smaller ones after it may fit.
  const unshown: string[] = [];
  for (const hosts of sets) {
    const details = hostDetails(hosts);
    if (details.length > room(head) - body.length) unshown.push(...hosts.map((h) => mdText(h.name)));
    else body += details;
  }
  if (changed.length === 0) body = 'No host changes.\n';
  // Three names at most: the note must fit the room kept for it (host names are up to 63 characters).
  if (unshown.length > 0) body += `\n_Truncated: ${unshown.length} more host(s) with changes are not shown here (${cappedNames(unshown, 3)}); plan.json lists every change._\n`;
  return `${head}${body}`;
}
