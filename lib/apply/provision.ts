// bin/apply's infrastructure step: the plan's Terraform stack goes through an existing engine
// before any host is touched, and the engine's outputs (addresses, pinned host keys) become the
// inventory the host rollout connects with. The engine plans again at apply time: the reviewed
// plan.md shows what was planned, the engine decides against the state as it is now. It is part of
// the rollout, not of engine/: every engine step is a step of the rollout's journal.

import { FLEET, type Journal, type StepResult } from './journal.ts';
import { STACK_FILE } from '../compile/infra.ts';
import { inEngineWorkdir, stackDirOf } from '../engine/engine-workdir.ts';
import { protectLocalState } from '../engine/local-state.ts';
import { TerraformEngine, engineSecretEnv, findEngine } from '../engine/terraform.ts';
import type { InfraDiff } from '../plan/infra-diff.ts';
import type { PlanDocument } from '../plan/plan-format.ts';
import { secretBaseDir, type SecretValues } from '../plan/secrets.ts';

export interface ProvisionOptions {
  /** Progress lines: the engine's commands and its own output, secrets already redacted. */
  readonly log: (line: string) => void;
  /** Receives the engine's secret values, so everything printed can be scrubbed of them. */
  readonly secrets: SecretValues;
  /** Records init, plan, apply and output as fleet steps. */
  readonly journal?: Journal;
  /** Where PATH, UPKEEP_TERRAFORM and `{env}` secrets are read. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * init, plan (saved), apply of that saved plan when it changes anything, and `output -json`, which
 * is returned parsed for buildInventory. Throws EngineNotFoundError (with how to install an engine)
 * before anything runs when neither tofu nor terraform is there.
 */
export async function provision(planDir: string, plan: PlanDocument, options: ProvisionOptions): Promise<unknown> {
  const dir = stackDirOf(planDir);
  if (dir === undefined) throw new Error(`${planDir} has no terraform/${STACK_FILE}: nothing to provision`);
  if (plan.provisioning === undefined) throw new Error(`${planDir}/plan.json has a Terraform stack but no provisioning settings (token reference); run bin/plan again`);
  const env = options.env ?? process.env;
  const step = async <T>(name: string, action: () => Promise<T>, judge?: (value: T) => { result: StepResult; detail?: string }): Promise<T> =>
    options.journal ? options.journal.step({ host: FLEET, step: name }, action, judge) : action();
  const provisioning = plan.provisioning;
  const engine = await step('terraform-engine', async () => {
    // A missing engine is the first thing to fix: say so before asking for the token.
    findEngine(env);
    const secretEnv = engineSecretEnv(provisioning, { env, baseDir: secretBaseDir(plan) }, options.secrets);
    return new TerraformEngine({ dir, env, secretEnv, secrets: options.secrets, log: options.log });
  });
  options.log(`provisioning with ${engine.binary.name} (${engine.binary.path})`);
  // A state left readable by an earlier run is closed before this one reads it, and the one it writes after.
  protectLocalState(dir);
  return inEngineWorkdir(dir, async () => {
    await step('terraform-init', () => engine.init());
    const counts = ({ add, change, replace, destroy }: InfraDiff) => `${add.length} to add, ${change.length} to change, ${replace.length} to replace, ${destroy.length} to destroy`;
    const planned = await step('terraform-plan', () => engine.plan(), (p) => ({ result: 'ok', detail: counts(p.diff) }));
    options.log(`infrastructure: ${counts(planned.diff)}`);
    if (planned.changes) {
      await step('terraform-apply', () => engine.apply(), () => ({ result: 'changed' }));
    } else {
      options.journal?.record({ host: FLEET, step: 'terraform-apply' }, 'skipped', new Date(), 'no infrastructure changes');
      options.log('no infrastructure changes: apply skipped');
    }
    return (await step('terraform-output', () => engine.outputs())).raw;
  }).finally(() => protectLocalState(dir));
}
