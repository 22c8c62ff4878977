// The live hosts as the base of a plan (bin/plan --live): each host's committed generation and
// managed files, and drift — managed files changed on the host behind upkeep's back.

import type { FileDrift } from './host-agent.ts';
import { planConnections, type PlanConnectionOptions } from './plan-connections.ts';
import { readLiveState } from './live-state.ts';
import type { BaseHost } from '../plan/build-plan.ts';
import type { PlanDocument, PlannedFile } from '../plan/plan-format.ts';
import { mdCode, mdText } from '../plan/markdown-text.ts';
import { cappedLines } from '../plan/markdown-list.ts';

export interface LiveBase {
  readonly base: Map<string, BaseHost>;
  /** Hosts with drift, and what drifted. */
  readonly drift: ReadonlyMap<string, readonly FileDrift[]>;
  /** Whether each running host has a reboot pending (for calendar.ics). */
  readonly rebootPending: ReadonlyMap<string, boolean>;
}

/** The manifest's files as they are on disk, so the plan shows drifted files as changes to make. */
function asOnDisk(files: readonly PlannedFile[], drift: readonly FileDrift[]): PlannedFile[] {
  const drifted = new Map(drift.map((d) => [d.path, d.fields]));
  return files
    .filter((f) => !drifted.get(f.path)?.includes('missing'))
    .map((f) => {
      const fields = drifted.get(f.path);
      if (!fields) return f;
      return {
        ...f,
        ...(fields.includes('content') && { sha256: 'drifted' }),
        ...(fields.includes('mode') && { mode: 'drifted' }),
        ...(fields.includes('owner') && { owner: 'drifted' }),
      };
    });
}

/** Reads every host of `plan` (one round trip each); throws naming every host that could not be read. */
export async function readLiveBase(plan: PlanDocument, options: PlanConnectionOptions): Promise<LiveBase> {
  const connections = planConnections(plan, options);
  try {
    const live = await readLiveState(plan, (host) => connections.connect(host));
    const base = new Map<string, BaseHost>();
    const drift = new Map<string, readonly FileDrift[]>();
    const failed: string[] = [];
    const rebootPending = new Map<string, boolean>();
    for (const result of Object.values(live)) {
      if ('error' in result) {
        failed.push(`${result.host}: ${result.error}`);
        continue;
      }
      base.set(result.host, { generation: result.generation, files: asOnDisk(result.files, result.drift), units: result.units, packages: result.packages });
      if (result.drift.length > 0) drift.set(result.host, result.drift);
      if (result.rebootRequired !== undefined) rebootPending.set(result.host, result.rebootRequired);
    }
    if (failed.length > 0) throw new Error(`cannot read the live state of every host:\n${failed.map((f) => `  - ${f}`).join('\n')}`);
    return { base, drift, rebootPending };
  } finally {
    await connections.close();
  }
}

/** The plan.md section that lists drift, or undefined when there is none. */
export function renderDriftSection(drift: ReadonlyMap<string, readonly FileDrift[]>, compact = false): string | undefined {
  if (drift.size === 0) return undefined;
  const lines = ['## Drift', '', `**${drift.size} host(s) differ from what upkeep last applied**; this plan puts the files back:`, ''];
  const items: string[] = [];
  for (const [host, files] of [...drift].sort(([a], [b]) => (a < b ? -1 : 1))) {
    for (const f of files) items.push(`- ${mdText(host)}: ${mdCode(f.path)} (${f.fields.map(mdText).join(', ')})`);
  }
  lines.push(...cappedLines(items, compact, 'drifted file(s)'));
  return `${lines.join('\n')}\n`;
}
