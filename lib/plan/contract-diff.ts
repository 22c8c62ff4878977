// The contract diff: what a plan does to the maintenance promise of each host, compared with its
// base, in words a reviewer cannot miss ("backup retention shortened on web1: 90 daily -> 30
// daily"). Weakening changes come first and are called so; strengthening changes are listed
// apart. Identical changes on many hosts are one line naming the hosts. Pure.

import { formatDuration } from '../policy/duration.ts';
import type { ContractWindow, HostContract } from './contract.ts';
import type { PlannedHost } from './plan-format.ts';
import { cappedNames } from './markdown-list.ts';
import { mdText } from './markdown-text.ts';

export interface ContractChange {
  readonly host: string;
  /** What changed, in words, e.g. "backup retention shortened". */
  readonly what: string;
  readonly before: string;
  readonly after: string;
  readonly weakens: boolean;
}

type Hosts = { readonly [name: string]: Pick<PlannedHost, 'name' | 'contract'> };

const PARTS = ['updates', 'backups', 'monitoring'] as const;

function clock(minute: number): string {
  return `${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}`;
}

function windowText(w: ContractWindow): string {
  const nth = w.nth === undefined ? '' : w.nth === 'last' ? 'last ' : `${['1st', '2nd', '3rd', '4th'][w.nth - 1]} `;
  const every = w.every === 'week' ? 'weekly' : 'monthly';
  return `${every} ${nth}${w.days.join('/')} ${clock(w.startMinute)} for ${formatDuration(w.durationSeconds)} (${w.timeZone})`;
}

function retentionText(r: NonNullable<HostContract['backups']>['retention']): string {
  return `${r.daily} daily, ${r.weekly} weekly, ${r.monthly} monthly, ${r.yearly} yearly`;
}

function hostChanges(name: string, before: HostContract, after: HostContract): ContractChange[] {
  const changes: ContractChange[] = [];
  const add = (what: string, b: string, a: string, weakens: boolean) => changes.push({ host: name, what, before: b, after: a, weakens });

  for (const part of PARTS) {
    const was = before.exempt[part];
    const now = after.exempt[part];
    if (now !== undefined && was === undefined) add(`newly exempt from ${part}`, 'not exempt', `exempt: "${now}"`, true);
    if (now === undefined && was !== undefined) add(`no longer exempt from ${part}`, `exempt: "${was}"`, 'not exempt', false);
  }

  const bu = before.updates;
  const au = after.updates;
  if (bu && !au) add('updates no longer managed', windowText(bu.window), 'none', true);
  if (!bu && au) add('updates now managed', 'none', windowText(au.window), false);
  if (bu && au) {
    if (au.securityDeadlineSeconds !== bu.securityDeadlineSeconds) {
      const longer = au.securityDeadlineSeconds > bu.securityDeadlineSeconds;
      add(`security update deadline ${longer ? 'lengthened' : 'shortened'}`, formatDuration(bu.securityDeadlineSeconds), formatDuration(au.securityDeadlineSeconds), longer);
    }
    const { durationSeconds: bd, ...bPlace } = bu.window;
    const { durationSeconds: ad, ...aPlace } = au.window;
    const moved = JSON.stringify(bPlace) !== JSON.stringify(aPlace);
    if (moved || ad > bd) add(`maintenance window ${moved ? (ad > bd ? 'moved and widened' : 'moved') : 'widened'}`, windowText(bu.window), windowText(au.window), true);
    else if (ad < bd) add('maintenance window narrowed', windowText(bu.window), windowText(au.window), false);
    if (au.reboot !== bu.reboot) add(au.reboot === 'never' ? 'automatic reboots turned off (kernel fixes wait for a manual reboot)' : 'reboot policy changed', bu.reboot, au.reboot, au.reboot === 'never');
  }

  const bb = before.backups;
  const ab = after.backups;
  if (bb && !ab) add('backups removed', retentionText(bb.retention), 'no backups', true);
  if (!bb && ab) add('backups added', 'no backups', retentionText(ab.retention), false);
  if (bb && ab) {
    const keys = ['daily', 'weekly', 'monthly', 'yearly'] as const;
    const shorter = keys.some((k) => ab.retention[k] < bb.retention[k]);
    const longer = keys.some((k) => ab.retention[k] > bb.retention[k]);
    if (shorter) add('backup retention shortened', retentionText(bb.retention), retentionText(ab.retention), true);
    else if (longer) add('backup retention lengthened', retentionText(bb.retention), retentionText(ab.retention), false);
  }

  const bm = before.monitoring;
  const am = after.monitoring;
  const checkCount = (m: HostContract['monitoring']) => Object.keys(m?.checks ?? {}).length;
  if (checkCount(bm) > 0 && checkCount(am) === 0) add('dropped from monitoring', `${checkCount(bm)} check(s)`, 'no checks', true);
  else if (checkCount(bm) === 0 && checkCount(am) > 0) add('now monitored', 'no checks', `${checkCount(am)} check(s)`, false);
  else if (bm && am) {
    for (const [check, b] of Object.entries(bm.checks)) {
      const a = Object.hasOwn(am.checks, check) ? am.checks[check] : undefined;
      if (a === undefined) add(`check ${check} removed`, `${b.kind} every ${formatDuration(b.intervalSeconds)}`, 'no check', true);
      else if (a.intervalSeconds !== b.intervalSeconds) {
        const slower = a.intervalSeconds > b.intervalSeconds;
        add(`check ${check} runs ${slower ? 'less' : 'more'} often`, `every ${formatDuration(b.intervalSeconds)}`, `every ${formatDuration(a.intervalSeconds)}`, slower);
      }
    }
    for (const [check, a] of Object.entries(am.checks)) {
      if (!Object.hasOwn(bm.checks, check)) add(`check ${check} added`, 'no check', `${a.kind} every ${formatDuration(a.intervalSeconds)}`, false);
    }
  }
  if (bm && am && checkCount(bm) > 0 && checkCount(am) > 0) {
    if (am.slaSeconds !== bm.slaSeconds) {
      const looser = am.slaSeconds > bm.slaSeconds;
      add(`alert response time (SLA) ${looser ? 'loosened' : 'tightened'}`, formatDuration(bm.slaSeconds), formatDuration(am.slaSeconds), looser);
    }
    if (am.failureThreshold !== bm.failureThreshold) {
      const later = am.failureThreshold > bm.failureThreshold;
      add(`alerts ${later ? 'later' : 'sooner'}: failed runs before an alert`, String(bm.failureThreshold), String(am.failureThreshold), later);
    }
  }
  return changes;
}

/**
 * Every change to the promise from `base` to `next`, host by host (sorted), weakening ones first.
 * A host only in `base` is no longer maintained at all; a host only in `next` is newly maintained.
 */
export function diffContracts(base: Hosts, next: Hosts): ContractChange[] {
  const names = [...new Set([...Object.keys(base), ...Object.keys(next)])].sort();
  const changes: ContractChange[] = [];
  for (const name of names) {
    const before = Object.hasOwn(base, name) ? base[name]!.contract : undefined;
    const after = Object.hasOwn(next, name) ? next[name]!.contract : undefined;
    if (before && !after) changes.push({ host: name, what: 'removed from the fleet: no longer updated, backed up or monitored by upkeep', before: 'maintained', after: 'not maintained', weakens: true });
    else if (!before && after) changes.push({ host: name, what: 'added to the fleet', before: 'not maintained', after: 'maintained', weakens: false });
    else if (before && after) changes.push(...hostChanges(name, before, after));
  }
  return [...changes.filter((c) => c.weakens), ...changes.filter((c) => !c.weakens)];
}

function groupedLines(changes: readonly ContractChange[], hostLimit: number): string[] {
  const groups = new Map<string, { change: ContractChange; hosts: string[] }>();
  for (const c of changes) {
    const key = JSON.stringify([c.what, c.before, c.after]);
    const group = groups.get(key) ?? { change: c, hosts: [] };
    group.hosts.push(c.host);
    groups.set(key, group);
  }
  return [...groups.values()].map(({ change, hosts }) => {
    const on = hosts.length === 1 ? `on ${mdText(hosts[0]!)}` : `on ${hosts.length} hosts (${cappedNames(hosts.map(mdText), hostLimit)})`;
    return `- **${mdText(change.what)}** ${on}: ${mdText(change.before)} → ${mdText(change.after)}`;
  });
}

/**
 * The contract section of plan.md, or undefined when the promise is unchanged. `compact` names at
 * most 10 hosts per line (every distinct change keeps its line), for a plan that must fit a comment.
 */
export function renderContractSection(changes: readonly ContractChange[], compact = false): string | undefined {
  if (changes.length === 0) return undefined;
  const limit = compact ? 10 : Infinity;
  const weaker = changes.filter((c) => c.weakens);
  const stronger = changes.filter((c) => !c.weakens);
  const lines = ['## Maintenance contract', ''];
  if (weaker.length > 0) {
    const hosts = new Set(weaker.map((c) => c.host)).size;
    lines.push(`> **WARNING: this change WEAKENS the maintenance promise on ${hosts} host(s).** Make sure the customer agreed to it:`, '', ...groupedLines(weaker, limit), '');
  }
  if (stronger.length > 0) lines.push('Strengthened or added:', '', ...groupedLines(stronger, limit), '');
  return lines.join('\n');
}
