// bin/plan's infrastructure section from the engine itself: when tofu or terraform is installed and
// the Hetzner token can be read, the engine plans the stack against the real state and cloud, which
// sees what an offline diff cannot (a server deleted by hand, drifted labels). Without an engine or
// credentials the offline diff stands, silently: that is the normal case on a laptop or in a fork's
// pipeline. An engine that fails leaves the offline section in place and says why on stderr.

import { inEngineWorkdir, stackDirOf } from './engine-workdir.ts';
import { EngineNotFoundError, TerraformEngine, engineSecretEnv, findEngine } from './terraform.ts';
import type { InfraDiff } from '../plan/infra-diff.ts';
import type { PlanDocument } from '../plan/plan-format.ts';
import { SecretValues, resolveSecret, secretBaseDir } from '../plan/secrets.ts';

export interface EnginePlan {
  readonly diff: InfraDiff;
  /** Where the diff came from, for plan.md: "`tofu show -json` of a saved plan". */
  readonly source: string;
}

export interface EnginePlanOptions {
  /** One line per problem of an engine that was there and failed; secrets already redacted. */
  readonly warn: (line: string) => void;
  /** Where PATH, UPKEEP_TERRAFORM and `{env}` secrets are read. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * init, plan -out and show -json in PLAN_DIR/terraform. Undefined when there is no stack, no
 * engine, no readable token, or the engine failed (then `warn` was called).
 */
export async function planWithEngine(planDir: string, plan: PlanDocument, options: EnginePlanOptions): Promise<EnginePlan | undefined> {
  const dir = stackDirOf(planDir);
  if (dir === undefined || plan.provisioning === undefined) return undefined;
  const env = options.env ?? process.env;
  try {
    findEngine(env);
  } catch (error) {
    if (error instanceof EngineNotFoundError) return undefined;
    throw error;
  }
  const source = { env, baseDir: secretBaseDir(plan) };
  try {
    resolveSecret(plan.provisioning.token, source);
  } catch {
    return undefined;
  }
  const secrets = new SecretValues();
  try {
    const engine = new TerraformEngine({ dir, env, secretEnv: engineSecretEnv(plan.provisioning, source, secrets), secrets });
    const diff = await inEngineWorkdir(engine, async () => {
      await engine.init();
      return (await engine.plan()).diff;
    });
    return { diff, source: `\`${engine.binary.name} show -json\` of a saved plan` };
  } catch (error) {
    const message = secrets.redact(error instanceof Error ? error.message : String(error));
    options.warn(`the Terraform engine could not plan the infrastructure, plan.md shows the offline diff instead: ${message}`);
    return undefined;
  }
}
