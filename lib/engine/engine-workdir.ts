// The engine leaves files in the stack directory: the saved plan (Terraform and OpenTofu store every
// input variable's value in it, the Hetzner token included, in plain text), .terraform/ with the
// providers and backend settings, and the dependency lock file. The stack directory belongs to a
// reviewed plan directory that pipelines archive and that bin/plan reads back as a --base, so what
// an engine run added is removed when the run ends, however it ends.

import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { STACK_FILE } from '../compile/infra.ts';
import { SAVED_PLAN } from './terraform.ts';

/** The plan directory's synthesized stack, when its fleet provisions hosts. */
export function stackDirOf(planDir: string): string | undefined {
  const dir = join(planDir, 'terraform');
  return existsSync(join(dir, STACK_FILE)) ? dir : undefined;
}

/** Runs `work` in the stack directory `dir`, then removes every entry it added, and any saved plan. */
export async function inEngineWorkdir<T>(dir: string, work: () => Promise<T>): Promise<T> {
  const before = new Set(readdirSync(dir).filter((name) => name !== SAVED_PLAN));
  try {
    return await work();
  } finally {
    for (const name of readdirSync(dir)) if (!before.has(name)) rmSync(join(dir, name), { recursive: true, force: true });
  }
}
