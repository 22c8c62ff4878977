// What the hosts have now, for planning against the live fleet (bin/plan --live): each host's
// committed generation and its managed files as the manifest records them, plus drift: managed
// files whose content, mode or owner on disk no longer match the manifest.

import type { PlanDocument, PlannedFile } from '../plan/plan-format.ts';
import { readState, type FileDrift } from './host-agent.ts';
import { firstLine, pMap, type Transport } from './transport.ts';

export interface LiveHost {
  readonly host: string;
  /** null: upkeep never applied here. */
  readonly generation: string | null;
  readonly planId: string | null;
  /** Managed files as the manifest records them (the base a plan compares against). */
  readonly files: readonly PlannedFile[];
  readonly units: readonly string[];
  readonly packages: readonly string[];
  readonly drift: readonly FileDrift[];
  /** Whether a reboot is pending; absent when the host cannot say (an image root). */
  readonly rebootRequired?: boolean;
}

export type LiveHostResult = LiveHost | { readonly host: string; readonly error: string };

/** One round trip per host, `parallel` at a time; an unreachable host is reported, not thrown. */
export async function readLiveState(plan: Pick<PlanDocument, 'hosts'>, transport: (host: string) => Transport, parallel = 8): Promise<Record<string, LiveHostResult>> {
  const names = Object.keys(plan.hosts).sort();
  const results = await pMap(names, parallel, async (host): Promise<LiveHostResult> => {
    try {
      const state = await readState(transport(host));
      return {
        host,
        generation: state.generation,
        planId: state.planId,
        files: state.manifest.map((f) => ({ path: f.path, mode: f.mode ?? '', owner: f.owner ?? '', ...(f.sha256 !== null && { sha256: f.sha256 }) })),
        units: state.units.map((u) => u.name),
        packages: state.packages,
        drift: state.drift,
        ...(state.rebootRequired !== undefined && { rebootRequired: state.rebootRequired }),
      };
    } catch (error) {
      return { host, error: firstLine(error) };
    }
  });
  return Object.fromEntries(results.map((r) => [r.host, r]));
}
