// The engine leaves files behind: the saved plan (Terraform and OpenTofu store every input
// variable's value in it, the Hetzner token included, in plain text) in its private temporary
// directory, and .terraform/ with the providers and backend settings and the dependency lock file
// in the stack directory. The stack directory belongs to a reviewed plan directory that pipelines
// archive and that bin/plan reads back as a --base, so what an engine run added is removed when the
// run ends, however it ends: normally, by an error, or by SIGINT/SIGTERM/SIGHUP (a CI timeout), after
// which the process exits with 128 + the signal's number.

import { existsSync, readdirSync, rmSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { STACK_FILE } from '../compile/infra.ts';
import type { TerraformEngine } from './terraform.ts';

const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** The plan directory's synthesized stack, when its fleet provisions hosts. */
export function stackDirOf(planDir: string): string | undefined {
  const dir = join(planDir, 'terraform');
  return existsSync(join(dir, STACK_FILE)) ? dir : undefined;
}

/** Runs `work` with `engine` in its stack directory, then removes the saved plan and every entry the run added there. */
export async function inEngineWorkdir<T>(engine: TerraformEngine, work: () => Promise<T>): Promise<T> {
  const before = new Set(readdirSync(engine.dir));
  const cleanUp = () => {
    engine.close();
    for (const name of readdirSync(engine.dir)) if (!before.has(name)) rmSync(join(engine.dir, name), { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
    // The saved plan goes at once; the engine gets the signal and a moment to save its state.
    cleanUp();
    void engine.interrupt(signal).finally(() => {
      cleanUp();
      process.exit(128 + constants.signals[signal]);
    });
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  try {
    return await work();
  } finally {
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
    cleanUp();
  }
}
