// A local Terraform state holds every secret of the stack in plain text (the tls provider's private
// keys among them), and the engines write it with their default mode, readable by every local
// user. So around every engine run the state file and its backup are made private to their owner,
// and a state directory that does not exist yet is created private.

import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { STACK_FILE } from '../compile/infra.ts';
import { DEFAULT_STATE_PATH } from '../compile/state-backend.ts';

/** The local state file of the stack in `stackDir`, or undefined when its backend is remote. */
export function localStatePath(stackDir: string): string | undefined {
  let stack: { terraform?: { backend?: { local?: { path?: string } } } };
  try {
    stack = JSON.parse(readFileSync(resolve(stackDir, STACK_FILE), 'utf8'));
  } catch {
    return undefined;
  }
  const local = stack.terraform?.backend?.local;
  return local ? resolve(stackDir, local.path ?? DEFAULT_STATE_PATH) : undefined;
}

/** State file and backup 0600; a missing state directory created 0700. Remote backends: nothing to do. */
export function protectLocalState(stackDir: string): void {
  const state = localStatePath(stackDir);
  if (state === undefined) return;
  if (!existsSync(dirname(state))) mkdirSync(dirname(state), { recursive: true, mode: 0o700 });
  for (const file of [state, `${state}.backup`]) if (existsSync(file)) chmodSync(file, 0o600);
}
