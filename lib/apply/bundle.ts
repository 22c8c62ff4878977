// A plan directory as the applier reads it, and the bundle each host's agent takes. The applier
// installs exactly what was reviewed: plan.json must still hash to its plan_id, and every file's
// content on disk must still hash to the sha256 the plan recorded for it.

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { PlanDocument, PlannedHost } from '../plan/plan-format.ts';
import { readPlanDir } from '../plan/plan-dir.ts';
import { canonicalJson } from '../compile/canonical-json.ts';
import { sha256 } from '../compile/generation.ts';
import type { BundleFile, HostBundle } from '../hosts/host-agent.ts';
import { resolveSecret, type SecretSource, type SecretValues } from '../plan/secrets.ts';

export class PlanDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlanDirError';
  }
}

export interface PlanDir {
  /** Absolute path of the plan directory. */
  readonly dir: string;
  readonly plan: PlanDocument;
}

/** The hash a plan document is named by: everything except `metadata` and `plan_id`. */
export function planIdOf(plan: PlanDocument): string {
  const { plan_id: _id, metadata: _metadata, ...reviewed } = plan;
  return sha256(canonicalJson(reviewed));
}

/** Reads DIR/plan.json and verifies it is the plan that was reviewed. */
export async function loadReviewedPlan(dir: string): Promise<PlanDir> {
  const absolute = resolve(dir);
  let plan: PlanDocument;
  try {
    plan = (await readPlanDir(absolute)).document;
  } catch (error) {
    throw new PlanDirError(`${dir} is not a plan directory: ${(error as Error).message}`);
  }
  if (planIdOf(plan) !== plan.plan_id) {
    throw new PlanDirError(`${dir}/plan.json was changed after it was planned (its content no longer hashes to plan_id ${plan.plan_id}); run bin/plan again`);
  }
  for (const group of plan.groups) {
    for (const host of group.hosts) {
      if (plan.hosts[host] === undefined) throw new PlanDirError(`${dir}/plan.json: group ${group.name} names host ${host}, which the plan does not have`);
    }
  }
  return { dir: absolute, plan };
}

/**
 * The bundle the host's agent installs: file contents from DIR/hosts/<host>/, each checked against
 * the plan's hash, and secrets resolved now. Resolved values are added to `secrets` for redaction.
 */
export function hostBundle(planDir: PlanDir, host: PlannedHost, source: SecretSource, secrets: SecretValues): HostBundle {
  const files: BundleFile[] = host.files.map((file) => {
    // The path becomes a location under DIR/hosts/<host>/ here and an absolute path on the host.
    if (!file.path.startsWith('/') || file.path.split('/').some((part) => part === '..' || part === '.')) {
      throw new PlanDirError(`${host.name}: ${JSON.stringify(file.path)} is not a plain absolute path`);
    }
    if (file.secret !== undefined) {
      const content = resolveSecret(file.secret, source);
      secrets.add(content);
      return { path: file.path, mode: file.mode, owner: file.owner, content };
    }
    const onDisk = join(planDir.dir, 'hosts', host.name, file.path);
    let content: Buffer;
    try {
      content = readFileSync(onDisk);
    } catch (error) {
      throw new PlanDirError(`${host.name}: ${file.path}: the plan directory has no content for it (${(error as NodeJS.ErrnoException).code})`);
    }
    if (sha256(content) !== file.sha256) {
      throw new PlanDirError(`${host.name}: ${file.path}: content in the plan directory differs from the reviewed plan (sha256 ${sha256(content).slice(0, 12)}, plan says ${String(file.sha256).slice(0, 12)})`);
    }
    return { path: file.path, mode: file.mode, owner: file.owner, content };
  });
  return { files, units: host.units, packages: host.packages };
}
