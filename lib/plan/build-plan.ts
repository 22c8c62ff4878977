// plan: the desired state of every host compared with a base (nothing applied, an earlier plan,
// or the live hosts) -> the plan document and the files of the plan directory. Pure.

import type { HostDesiredState } from '../compile/desired-state.ts';
import type { ResolvedFleet, ResolvedHost } from '../policy/resolved.ts';
import { createHash } from 'node:crypto';
import { canonicalJson, canonicalJsonChunks } from '../compile/canonical-json.ts';
import { plannedState, sha256, type PlannedState } from '../compile/generation.ts';
import type { InfraDiff } from './infra-diff.ts';
import { contractOf } from './contract.ts';
import { PLAN_FORMAT_VERSION, type FileChange, type PlanDocument, type PlannedFile, type PlannedHost, type PlannedInfrastructure } from './plan-format.ts';

/** What a host has now, as far as the plan knows. */
export interface BaseHost {
  readonly generation: string | null;
  readonly files: readonly PlannedFile[];
  readonly units: readonly string[];
  readonly packages: readonly string[];
}

export interface PlanInput {
  readonly fleet: ResolvedFleet;
  /**
   * Compiled hosts, in the order of fleet.hosts: with their contents (which then go to `objects`),
   * or already planned (compileFleetPlanned, whose contents went to the plan directory on the way).
   */
  readonly hosts: readonly (HostDesiredState | PlannedState)[];
  /** The base per host; a host missing here has nothing applied. */
  readonly base: ReadonlyMap<string, BaseHost>;
  /** The policy file, relative to the working directory. */
  readonly policy: string;
  /** The synthesized stack (terraform/<name> -> content) and the diff shown for it, when the fleet provisions hosts. */
  readonly infrastructure?: { readonly files: Readonly<Record<string, string>>; readonly diff: InfraDiff; readonly source: string };
  readonly metadata: PlanDocument['metadata'];
}

export interface BuiltPlan {
  readonly document: PlanDocument;
  /** The content of every non-secret host file, once per distinct content: sha256 -> content (of the hosts given with contents). */
  readonly objects: ReadonlyMap<string, string>;
}

const EMPTY_BASE: BaseHost = { generation: null, files: [], units: [], packages: [] };

function fileChanges(base: readonly PlannedFile[], next: readonly PlannedFile[]): FileChange[] {
  const before = new Map(base.map((f) => [f.path, f]));
  const after = new Map(next.map((f) => [f.path, f]));
  const changes: FileChange[] = [];
  for (const f of next) {
    const old = before.get(f.path);
    // Keys in sorted order, as every object of a plan (canonicalJson serializes them as they are).
    if (!old) {
      changes.push({ action: 'create', path: f.path });
      continue;
    }
    // A secret's value never reaches a plan: a live base knows its hash, a plan only its reference,
    // so a secret file changes when its reference does (or when it turned into / out of a secret).
    const contentChanged = f.secret
      ? old.secret !== undefined ? canonicalJson(old.secret) !== canonicalJson(f.secret) : old.sha256 === undefined
      : old.sha256 !== f.sha256 || old.secret !== undefined;
    const fields = [
      ...(contentChanged ? (['content'] as const) : []),
      ...(old.mode !== f.mode ? (['mode'] as const) : []),
      ...(old.owner !== f.owner ? (['owner'] as const) : []),
    ];
    if (fields.length > 0) changes.push({ action: 'update', fields, path: f.path });
  }
  for (const f of base) if (!after.has(f.path)) changes.push({ action: 'delete', path: f.path });
  return changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function plannedInfrastructure(input: NonNullable<PlanInput['infrastructure']>): PlannedInfrastructure {
  const stack = Object.fromEntries(Object.entries(input.files).map(([name, text]) => [name, sha256(text)]));
  return { stack, diff: input.diff, source: input.source };
}

function plannedHost(host: ResolvedHost, state: PlannedState, base: BaseHost): PlannedHost {
  const { files, generation } = state;
  const unitsBefore = new Set(base.units);
  const unitsAfter = new Set(state.units);
  const packagesBefore = new Set(base.packages);
  // Keys in sorted order: canonicalJson serializes the host as it is, without a sorted copy.
  return {
    ...(host.address !== undefined && { address: host.address }),
    baseGeneration: base.generation,
    changes: {
      files: fileChanges(base.files, files),
      packagesAdded: state.packages.filter((p) => !packagesBefore.has(p)),
      unitsDisabled: base.units.filter((u) => !unitsAfter.has(u)),
      unitsEnabled: state.units.filter((u) => !unitsBefore.has(u)),
    },
    contract: contractOf(host),
    files,
    generation,
    group: host.group,
    ...(host.hostKey !== undefined && { hostKey: host.hostKey }),
    name: host.name,
    packages: state.packages,
    port: host.port,
    units: state.units,
  };
}

export function hasChanges(host: PlannedHost): boolean {
  const c = host.changes;
  // The same generation can still have changes to make: files that drifted on the host.
  return host.generation !== host.baseGeneration || c.files.length + c.unitsEnabled.length + c.unitsDisabled.length + c.packagesAdded.length > 0;
}

/** The hash a plan document is named by: everything except `metadata` and `plan_id`. */
export function planIdOf(plan: Omit<PlanDocument, 'plan_id' | 'metadata'>): string {
  const { plan_id: _id, metadata: _metadata, ...reviewed } = plan as PlanDocument;
  // sha256(canonicalJson(reviewed)), hashed a host at a time: the text of a large plan is hundreds of megabytes.
  const hash = createHash('sha256');
  for (const chunk of canonicalJsonChunks(reviewed, undefined, 2)) hash.update(chunk);
  return hash.digest('hex');
}

function sealed(body: Omit<PlanDocument, 'plan_id' | 'metadata'>, metadata: PlanDocument['metadata']): PlanDocument {
  return { ...body, plan_id: planIdOf(body), metadata };
}

/** `plan` with the infrastructure diff the reviewer is shown replaced (the engine's own), and named anew. */
export function withInfraDiff(plan: PlanDocument, diff: InfraDiff, source: string): PlanDocument {
  if (plan.infrastructure === undefined) throw new Error('withInfraDiff: the plan has no terraform/ stack');
  const { plan_id: _id, metadata, ...body } = plan;
  return sealed({ ...body, infrastructure: { ...plan.infrastructure, diff, source } }, metadata);
}

/** The plan of `input`; `plan_id` names everything but the metadata. */
export function buildPlan(input: PlanInput): BuiltPlan {
  const objects = new Map<string, string>();
  const hosts: Record<string, PlannedHost> = {};
  input.fleet.hosts.forEach((host, i) => {
    const given = input.hosts[i]!;
    const state = 'generation' in given ? given : plannedState(given, (hash, content) => objects.set(hash, content));
    hosts[host.name] = plannedHost(host, state, input.base.get(host.name) ?? EMPTY_BASE);
  });
  const all = Object.values(hosts);
  const changed = all.filter(hasChanges);
  const count = (action: FileChange['action']) => all.reduce((n, h) => n + h.changes.files.filter((c) => c.action === action).length, 0);
  const body = {
    format_version: PLAN_FORMAT_VERSION as typeof PLAN_FORMAT_VERSION,
    fleet: input.fleet.name,
    policy: input.policy,
    groups: input.fleet.groups,
    hosts,
    ...(input.fleet.provisioning && input.fleet.hosts.some((h) => h.provision) && { provisioning: input.fleet.provisioning }),
    ...(input.infrastructure && { infrastructure: plannedInfrastructure(input.infrastructure) }),
    summary: {
      hostsChanged: changed.length,
      hostsUnchanged: all.length - changed.length,
      filesCreated: count('create'),
      filesUpdated: count('update'),
      filesDeleted: count('delete'),
    },
  };
  return { document: sealed(body, input.metadata), objects };
}
