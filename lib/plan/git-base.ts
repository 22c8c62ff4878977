// `bin/plan --base git:REF`: the policy as it was at a git ref, compiled and planned as the base,
// so a pull request is reviewed against main without a stored plan directory. The ref is checked
// out into a temporary worktree (the checkout the user works in is never touched) that is removed
// again afterwards, also when loading or compiling the old policy fails.

import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { compileFleet } from '../compile/fleet.ts';
import { loadPolicy } from '../policy/load.ts';
import { prepareFleet } from '../policy/prepare.ts';
import { buildPlan } from './build-plan.ts';
import type { PlanDocument } from './plan-format.ts';

const run = promisify(execFile);

/** The base a `git:REF` names: the plan of the policy at REF as if nothing were applied, and its stack. */
export interface GitBase {
  readonly document: PlanDocument;
  readonly terraform?: Record<string, string>;
}

async function git(cwd: string, args: readonly string[]): Promise<string> {
  try {
    return (await run('git', [...args], { cwd, encoding: 'utf8', maxBuffer: 1 << 24 })).stdout;
  } catch (error) {
    const e = error as { code?: number | string; stderr?: string };
    const why = (e.stderr ?? '').trim().split('\n').slice(-3).join('; ') || String(e.code);
    throw new Error(`git ${args.join(' ')} (in ${cwd}) failed with exit code ${String(e.code)}: ${why}`);
  }
}

/**
 * The plan of `policyFile` as it was at `ref` in the git repository holding it. `projectDir` is
 * passed to the compiler as for the current policy, so the two stacks differ only where the
 * policies do.
 */
export async function planAtGitRef(policyFile: string, ref: string, projectDir: string): Promise<GitBase> {
  if (ref === '' || ref.startsWith('-')) throw new Error(`--base git:REF needs a git ref (a branch, tag or commit), got ${JSON.stringify(ref)}`);
  const policyDir = dirname(resolve(policyFile));
  const top = (await git(policyDir, ['rev-parse', '--show-toplevel'])).trim();
  const inRepo = relative(realpathSync(top), realpathSync(resolve(policyFile)));
  const commit = (await git(top, ['rev-parse', '--verify', '--end-of-options', `${ref}^{commit}`])).trim();
  const work = mkdtempSync(join(tmpdir(), 'upkeep-base-'));
  const tree = join(work, 'tree');
  try {
    await git(top, ['worktree', 'add', '--detach', '--quiet', tree, commit]);
    // The policy imports upkeep (and whatever else) from the project's node_modules, which git
    // does not hold.
    if (existsSync(join(top, 'node_modules')) && !existsSync(join(tree, 'node_modules'))) symlinkSync(join(top, 'node_modules'), join(tree, 'node_modules'), 'dir');
    const oldPolicy = join(tree, inRepo);
    if (!existsSync(oldPolicy)) throw new Error(`${inRepo} does not exist at ${ref} (${commit.slice(0, 12)}): nothing to compare against; plan without --base`);
    let fleet;
    try {
      const { spec, source } = await loadPolicy(oldPolicy);
      fleet = prepareFleet(spec, source);
    } catch (error) {
      throw new Error(`the policy at ${ref} (${commit.slice(0, 12)}) is not valid: ${(error as Error).message.replaceAll(`${tree}/`, '')}`);
    }
    const compiled = compileFleet(fleet, { projectDir });
    const { document } = buildPlan({ fleet, hosts: compiled.hosts, base: new Map(), policy: inRepo, metadata: { created_at: '', upkeep_version: '' } });
    return { document, ...(compiled.terraform && { terraform: { ...compiled.terraform } }) };
  } finally {
    await git(top, ['worktree', 'remove', '--force', tree]).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
    await git(top, ['worktree', 'prune']).catch(() => undefined);
  }
}
