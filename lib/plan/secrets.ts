// Secrets are references in the plan and values only inside the applier's memory and the bundle it
// streams to a host's stdin. Errors name the reference (variable or file), never the value, and
// everything the applier prints or journals goes through `redact` so a value echoed back by a remote
// command cannot reach a log either. Both the engine (the Hetzner token) and the applier resolve the
// plan's references, so they are resolved here in plan/, below both.

import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { SecretRef } from '../policy/model.ts';
import type { PlanDocument } from './plan-format.ts';

export interface SecretSource {
  /** Environment the `{env}` references read. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** Directory relative `{file}` references are resolved against (the policy file's directory). */
  readonly baseDir: string;
}

export class SecretError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretError';
  }
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** "env RESTIC_PASSWORD" / "file secrets/restic" — how messages name a reference. */
export function describeSecretRef(ref: SecretRef): string {
  return 'env' in ref ? `environment variable ${ref.env}` : `file ${ref.file}`;
}

/** Where relative `{file}` secret references point: the policy file's directory. */
export function secretBaseDir(plan: PlanDocument, cwd: string = process.cwd()): string {
  return dirname(resolve(cwd, plan.policy));
}

/** Reads the value a reference points at; throws SecretError naming the reference when it cannot. */
export function resolveSecret(ref: SecretRef, source: SecretSource): Buffer {
  if ('env' in ref) {
    if (!ENV_NAME.test(ref.env)) throw new SecretError(`secret reference names an invalid environment variable: ${JSON.stringify(ref.env)}`);
    const value = (source.env ?? process.env)[ref.env];
    if (value === undefined || value === '') throw new SecretError(`secret ${describeSecretRef(ref)} is not set in the applier's environment`);
    return Buffer.from(value, 'utf8');
  }
  const path = isAbsolute(ref.file) ? ref.file : resolve(source.baseDir, ref.file);
  let value: Buffer;
  try {
    value = readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new SecretError(`secret ${describeSecretRef(ref)} cannot be read (${code})`);
  }
  if (value.length === 0) throw new SecretError(`secret ${describeSecretRef(ref)} is empty`);
  return value;
}

/** Every secret value resolved during a run, so output can be scrubbed of them. */
export class SecretValues {
  private readonly values = new Set<string>();

  add(value: Buffer): void {
    const text = value.toString('utf8');
    // Very short values would turn ordinary words into "[secret]"; they are still never printed by
    // the applier itself, only a remote echo of them would pass.
    if (text.trim().length >= 4) {
      this.values.add(text);
      this.values.add(text.trim());
    }
  }

  /** The text with every known secret value replaced by "[secret]". */
  redact(text: string): string {
    let out = text;
    // Longest first, so a value that contains another is replaced whole.
    for (const value of [...this.values].sort((a, b) => b.length - a.length)) out = out.split(value).join('[secret]');
    return out;
  }
}
