// Secrets are references in the plan and values only inside the applier's memory and the bundle it
// streams to a host's stdin. Errors name the reference (variable or file), never the value, and
// everything the applier prints or journals goes through `redact` so a value echoed back by a remote
// command cannot reach a log either. Both the engine (the Hetzner token) and the applier resolve the
// plan's references, so they are resolved here in plan/, below both.

import { createHmac } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import type { FileSecret } from '../compile/desired-state.ts';
import type { SecretRef } from '../policy/model.ts';
import type { PlanDocument } from './plan-format.ts';

export interface SecretSource {
  /** Environment the `{env}` references read. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Directory relative `{file}` references are resolved against (the policy file's directory, the
   * project): a `{file}` reference must name a file inside it, symlinks resolved.
   */
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

/** Pseudo file systems: a process's environment, memory, devices. Never a secret of the policy. */
const PSEUDO_FILE_SYSTEMS = ['/proc', '/sys', '/dev'];

function inside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/**
 * The real path of a `{file}` reference, which must stay inside the project once every symlink is
 * resolved: a policy can otherwise send the applier's own files (~/.ssh, /proc/self/environ with
 * the Hetzner token) to any host or webhook.
 */
function projectFile(ref: { readonly file: string }, baseDir: string): string {
  const refuse = (why: string) => new SecretError(`secret ${describeSecretRef(ref)} is refused: ${why}`);
  const project = realpathSync(baseDir);
  const path = realpathSync(resolve(project, ref.file));
  if (PSEUDO_FILE_SYSTEMS.some((fs) => path === fs || path.startsWith(`${fs}/`))) throw refuse('it is in /proc, /sys or /dev');
  if (!inside(project, path)) throw refuse(`a secret file must be inside the project directory (${project})${isAbsolute(ref.file) ? '' : ', symlinks resolved'}`);
  return path;
}

/** Reads the value a reference points at; throws SecretError naming the reference when it cannot. */
export function resolveSecret(ref: SecretRef, source: SecretSource): Buffer {
  if ('env' in ref) {
    if (!ENV_NAME.test(ref.env)) throw new SecretError(`secret reference names an invalid environment variable: ${JSON.stringify(ref.env)}`);
    const value = (source.env ?? process.env)[ref.env];
    if (value === undefined || value === '') throw new SecretError(`secret ${describeSecretRef(ref)} is not set in the applier's environment`);
    return Buffer.from(value, 'utf8');
  }
  let value: Buffer;
  try {
    value = readFileSync(projectFile(ref, source.baseDir));
  } catch (error) {
    if (error instanceof SecretError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new SecretError(`secret ${describeSecretRef(ref)} cannot be read (${code})`);
  }
  if (value.length === 0) throw new SecretError(`secret ${describeSecretRef(ref)} is empty`);
  return value;
}

/** A secret file's content: the reference's value, or the value derived from it (see FileSecret). */
export function resolveFileSecret(secret: FileSecret, source: SecretSource): Buffer {
  const value = resolveSecret(secret, source);
  if (secret.derive === undefined) return value;
  const key = value.toString('utf8').replace(/[\r\n]+$/, '');
  if (key.length === 0) throw new SecretError(`secret ${describeSecretRef(secret)} is empty`);
  return Buffer.from(createHmac('sha256', key).update(secret.derive, 'utf8').digest('hex'), 'utf8');
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
