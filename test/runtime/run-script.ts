// Runs a program of lib/runtime with /bin/sh, as systemd would run it on a host.

import { spawn, spawnSync } from 'node:child_process';
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

/**
 * As runScript, without blocking the event loop (for tests that serve HTTP in this process, or
 * hold what the script waits for); `onStderr` sees its stderr so far as it grows. With `input`,
 * that is the script's whole stdin.
 */
export function runScriptAsync(name: string, args: readonly string[] = [], env: Record<string, string> = {}, onStderr: (stderr: string) => void = () => {}, input?: string): Promise<ScriptRun> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', [join(RUNTIME_SOURCE, name), ...args], { env: { ...process.env, ...env } });
    if (input !== undefined) child.stdin.end(input);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      onStderr(stderr);
    });
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
