// Runs a program of lib/runtime with /bin/sh, as systemd would run it on a host.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const RUNTIME_SOURCE = fileURLToPath(new URL('../../lib/runtime/', import.meta.url));

export interface ScriptRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runScript(name: string, args: readonly string[] = [], env: Record<string, string> = {}, input?: string): ScriptRun {
  const run = spawnSync('/bin/sh', [join(RUNTIME_SOURCE, name), ...args], { encoding: 'utf8', env: { ...process.env, ...env }, input, timeout: 60_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** A fresh temporary directory holding `files` (relative path -> content). */
export function tempDir(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'upkeep-runtime-'));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
}
