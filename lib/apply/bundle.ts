// A plan directory as the applier reads it, and the bundle each host's agent takes. The applier
// installs exactly what was reviewed: plan.json must still hash to its plan_id (optionally the id a
// reviewer approved), terraform/ must hold exactly the stack files plan.json names with their
// sha256, and every host file's content on disk (objects/, stored once per distinct content) must
// still hash to the sha256 the plan recorded for that host's file.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { PlanDocument, PlannedHost } from '../plan/plan-format.ts';
import { objectPath, readPlanDir } from '../plan/plan-dir.ts';
import { planIdOf } from '../plan/build-plan.ts';
import { sha256 } from '../compile/generation.ts';
import type { BundleFile, HostBundle } from '../hosts/host-agent.ts';
import { resolveFileSecret, type SecretSource, type SecretValues } from '../plan/secrets.ts';

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

export { planIdOf };

/** Shortest accepted approved id: the 12 hex characters bin/plan prints and plan.md shows. */
const MIN_PLAN_ID_PREFIX = 12;

/**
 * Refuses a plan whose id is not `approved`: the full id or a prefix of at least 12 hex characters
 * (the short id bin/plan prints). A pipeline passes the id the reviewer approved.
 */
function checkApprovedPlanId(dir: string, plan: PlanDocument, approved: string): void {
  if (!new RegExp(`^[0-9a-f]{${MIN_PLAN_ID_PREFIX},64}$`).test(approved)) {
    throw new PlanDirError(`--plan-id takes the approved plan id: ${MIN_PLAN_ID_PREFIX} to 64 lowercase hex characters (the short id bin/plan prints, or plan.json's plan_id), got ${JSON.stringify(approved)}`);
  }
  if (!plan.plan_id.startsWith(approved)) {
    throw new PlanDirError(`${dir} holds plan ${plan.plan_id.slice(0, 12)}, not the approved plan ${approved}: refusing to apply it (nothing was changed); have this plan reviewed, or apply the approved one`);
  }
}

/**
 * Verifies DIR/terraform/ holds exactly the stack files the plan names, each with its sha256: the
 * engine loads every *.tf, *.tf.json, override and *.auto.tfvars file there, so an extra one (a
 * `local-exec` provisioner, say) would run unreviewed.
 */
export function checkReviewedStack(dir: string, plan: PlanDocument): void {
  const stackDir = join(dir, 'terraform');
  const present = existsSync(stackDir) ? readdirSync(stackDir).sort() : undefined;
  const reviewed = plan.infrastructure?.stack;
  if (reviewed === undefined) {
    if (present !== undefined && present.length > 0) throw new PlanDirError(`${dir}/terraform/ holds ${present.join(', ')}, but the reviewed plan has no Terraform stack; run bin/plan again`);
    return;
  }
  if (present === undefined) throw new PlanDirError(`${dir}/terraform/ is missing: the reviewed plan has a Terraform stack (${Object.keys(reviewed).join(', ')})`);
  for (const name of present) {
    if (!Object.hasOwn(reviewed, name)) throw new PlanDirError(`${dir}/terraform/${name} is not part of the reviewed plan (the engine would load it); remove it or run bin/plan again`);
  }
  for (const [name, hash] of Object.entries(reviewed)) {
    let content: Buffer;
    try {
      content = readFileSync(join(stackDir, name));
    } catch (error) {
      throw new PlanDirError(`${dir}/terraform/${name}: the reviewed stack file cannot be read (${(error as NodeJS.ErrnoException).code})`);
    }
    if (sha256(content) !== hash) throw new PlanDirError(`${dir}/terraform/${name} differs from the reviewed plan (sha256 ${sha256(content).slice(0, 12)}, plan says ${hash.slice(0, 12)}); run bin/plan again`);
  }
}

/** Reads DIR/plan.json and verifies it is the plan that was reviewed (and, given `approvedId`, the one approved). */
export async function loadReviewedPlan(dir: string, approvedId?: string): Promise<PlanDir> {
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
  if (approvedId !== undefined) checkApprovedPlanId(dir, plan, approvedId);
  checkReviewedStack(absolute, plan);
  for (const group of plan.groups) {
    for (const host of group.hosts) {
      if (plan.hosts[host] === undefined) throw new PlanDirError(`${dir}/plan.json: group ${group.name} names host ${host}, which the plan does not have`);
    }
  }
  return { dir: absolute, plan };
}

/** A path that becomes an absolute path on the host: plain, no "." or ".." parts. */
function checkPlainPath(host: PlannedHost, path: string): void {
  if (!path.startsWith('/') || path.split('/').some((part) => part === '..' || part === '.')) {
    throw new PlanDirError(`${host.name}: ${JSON.stringify(path)} is not a plain absolute path`);
  }
}

/**
 * The bundle the host's agent installs: file contents from DIR/objects/, each checked against
 * the plan's hash, and secrets resolved now. Resolved values are added to `secrets` for redaction.
 */
export function hostBundle(planDir: PlanDir, host: PlannedHost, source: SecretSource, secrets: SecretValues): HostBundle {
  const files: BundleFile[] = host.files.map((file) => {
    checkPlainPath(host, file.path);
    if (file.secret !== undefined) {
      const content = resolveFileSecret(file.secret, source);
      secrets.add(content);
      return { path: file.path, mode: file.mode, owner: file.owner, content };
    }
    return { path: file.path, mode: file.mode, owner: file.owner, content: reviewedHostFile(planDir, host, file.path) };
  });
  return { files, units: host.units, packages: host.packages };
}

/** The content of a planned (non-secret) file from DIR/objects/, checked against the plan's sha256. */
export function reviewedHostFile(planDir: PlanDir, host: PlannedHost, path: string): Buffer {
  checkPlainPath(host, path);
  const file = host.files.find((f) => f.path === path);
  if (file === undefined || file.secret !== undefined) throw new PlanDirError(`${host.name}: ${path} is not a planned file with reviewed content`);
  if (typeof file.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(file.sha256)) throw new PlanDirError(`${host.name}: ${path}: plan.json names no sha256 for its content`);
  const onDisk = join(planDir.dir, objectPath(file.sha256));
  let content: Buffer;
  try {
    content = readFileSync(onDisk);
  } catch (error) {
    throw new PlanDirError(`${host.name}: ${path}: the plan directory has no content for it (${objectPath(file.sha256)}: ${(error as NodeJS.ErrnoException).code})`);
  }
  if (sha256(content) !== file.sha256) {
    throw new PlanDirError(`${host.name}: ${path}: content in the plan directory differs from the reviewed plan (sha256 ${sha256(content).slice(0, 12)}, plan says ${String(file.sha256).slice(0, 12)})`);
  }
  return content;
}
