// Runs the synthesized stack through an existing engine: OpenTofu or Terraform, whichever is
// installed, so teams keep Terraform's state, locking and backends. Secrets (the Hetzner token, a
// pg connection string) reach the engine through its environment only: never its argv, never a log
// line, and an engine that echoes one back is redacted before anything is printed or thrown.
// What the engine writes holds secrets too (the saved plan stores every variable, the token
// included; local state holds the servers' private host keys): the engine runs with umask 077, the
// saved plan lives in a private temporary directory outside the plan directory, and local state
// files are kept 0600.

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { SecretValues, resolveSecret, type SecretSource } from '../plan/secrets.ts';
import type { ProvisioningSpec } from '../policy/model.ts';
import { TERRAFORM_HOSTS_OUTPUT, TOKEN_VARIABLE } from '../compile/infra.ts';
import { infraDiffFromPlanJson, type InfraDiff } from '../plan/infra-diff.ts';
import { localStatePath, protectLocalState } from './local-state.ts';

/** The saved plan's file name, inside the engine's private directory (see TerraformEngine.savedPlan). */
export const SAVED_PLAN = 'tfplan';

/** How long an interrupted engine may take to stop (Terraform stops gracefully and saves its state). */
const ENGINE_STOP_GRACE_MS = 30_000;

/** How many stderr lines an error carries. */
const STDERR_TAIL_LINES = 20;

export const INSTALL_HINT =
  'install OpenTofu (https://opentofu.org/docs/intro/install/) or Terraform (https://developer.hashicorp.com/terraform/install) ' +
  'and put `tofu` or `terraform` on PATH, or set UPKEEP_TERRAFORM to the path of the binary';

export class EngineNotFoundError extends Error {
  constructor(detail: string) {
    super(`no Terraform engine found (${detail}): ${INSTALL_HINT}`);
    this.name = 'EngineNotFoundError';
  }
}

export class EngineError extends Error {
  /** e.g. "tofu plan -input=false -no-color -out=tfplan -detailed-exitcode". */
  readonly command: string;
  readonly exitCode: number | null;
  /** The last stderr lines, secrets redacted. */
  readonly stderrTail: string;

  constructor(command: string, exitCode: number | null, meaning: string, stderrTail: string) {
    super(`${command} failed with exit code ${exitCode ?? 'none (killed)'} (${meaning})${stderrTail ? `:\n${stderrTail}` : ''}`);
    this.name = 'EngineError';
    this.command = command;
    this.exitCode = exitCode;
    this.stderrTail = stderrTail;
  }
}

export interface EngineBinary {
  readonly path: string;
  /** "tofu" or "terraform", for messages. */
  readonly name: string;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** UPKEEP_TERRAFORM (a path or a command name), else `tofu`, else `terraform`, from PATH. */
export function findEngine(env: NodeJS.ProcessEnv = process.env): EngineBinary {
  const chosen = env.UPKEEP_TERRAFORM;
  if (chosen) {
    const path = chosen.includes('/') ? (isAbsolute(chosen) ? chosen : resolve(chosen)) : onPath(chosen, env);
    if (!path || !executable(path)) throw new EngineNotFoundError(`UPKEEP_TERRAFORM=${chosen} is not an executable file`);
    return { path, name: /tofu/.test(chosen) ? 'tofu' : 'terraform' };
  }
  for (const name of ['tofu', 'terraform']) {
    const path = onPath(name, env);
    if (path) return { path, name };
  }
  throw new EngineNotFoundError('neither tofu nor terraform is on PATH');
}

/**
 * The engine's secret environment from the policy: the Hetzner token as TF_VAR_hcloud_token and,
 * for a pg backend, PG_CONN_STR. Values are added to `secrets` so output can be redacted.
 */
export function engineSecretEnv(provisioning: ProvisioningSpec, source: SecretSource, secrets: SecretValues): Record<string, string> {
  const env: Record<string, string> = {};
  const token = resolveSecret(provisioning.token, source);
  secrets.add(token);
  env[`TF_VAR_${TOKEN_VARIABLE}`] = token.toString('utf8').trim();
  const backend = provisioning.stateBackend;
  if (backend && 'pg' in backend) {
    const conn = resolveSecret(backend.pg.connStr, source);
    secrets.add(conn);
    env.PG_CONN_STR = conn.toString('utf8').trim();
  }
  return env;
}

export interface EngineOptions {
  /** The stack directory (DIR/terraform). */
  readonly dir: string;
  /** Where PATH and UPKEEP_TERRAFORM are read, and the base of the engine's environment. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** Secret variables for the engine's environment (see engineSecretEnv). */
  readonly secretEnv?: Readonly<Record<string, string>>;
  /** Known secret values, to scrub from everything printed or thrown. */
  readonly secrets?: SecretValues;
  /** Progress: the commands run and the engine's own output lines (redacted). */
  readonly log?: (line: string) => void;
}

export interface EngineHost {
  readonly address: string;
  readonly hostKey: string;
  readonly port: number;
}

export interface EngineOutputs {
  /** `output -json` as the engine printed it, for buildInventory. */
  readonly raw: unknown;
  /** The provisioned hosts from the inventory output. */
  readonly hosts: Readonly<Record<string, EngineHost>>;
}

interface RunResult {
  readonly exitCode: number;
  readonly stdout: string;
}

export class TerraformEngine {
  readonly binary: EngineBinary;
  private readonly options: EngineOptions;
  private readonly secrets: SecretValues;
  /** Private (0700) directory for the saved plan, made on first use, removed by close(). */
  private scratch: string | undefined;
  private running: ChildProcess | undefined;
  private interruptedBy: NodeJS.Signals | undefined;

  constructor(options: EngineOptions) {
    this.options = options;
    this.binary = findEngine(options.env ?? process.env);
    this.secrets = options.secrets ?? new SecretValues();
    for (const value of Object.values(options.secretEnv ?? {})) this.secrets.add(Buffer.from(value));
  }

  /** The stack directory the engine runs in. */
  get dir(): string {
    return this.options.dir;
  }

  /** Where the saved plan is written: a private temporary directory, never the plan directory. */
  get savedPlan(): string {
    this.scratch ??= mkdtempSync(join(tmpdir(), 'upkeep-engine-')); // mode 0700
    return join(this.scratch, SAVED_PLAN);
  }

  /** `init -input=false`: providers and backend. */
  async init(): Promise<void> {
    this.refuseStateInsidePlan();
    this.protectState();
    await this.run(['init', '-input=false', '-no-color'], { stream: true });
  }

  /** `plan -out=<saved plan> -detailed-exitcode`, then the saved plan's resource changes. */
  async plan(): Promise<{ readonly changes: boolean; readonly diff: InfraDiff }> {
    const { exitCode } = await this.run(['plan', '-input=false', '-no-color', `-out=${this.savedPlan}`, '-detailed-exitcode'], { stream: true, okCodes: [0, 2] });
    return { changes: exitCode === 2, diff: await this.show() };
  }

  /** The resource changes of the saved plan (`show -json <saved plan>`). */
  async show(): Promise<InfraDiff> {
    const { stdout } = await this.run(['show', '-json', '-no-color', this.savedPlan]);
    return infraDiffFromPlanJson(this.parseJson('show -json', stdout));
  }

  /** Applies exactly the saved plan (no new plan, no prompt). */
  async apply(): Promise<void> {
    await this.run(['apply', '-input=false', '-no-color', this.savedPlan], { stream: true });
    this.protectState();
  }

  /** Removes the saved plan and its directory, and makes local state files 0600. Safe to call again. */
  close(): void {
    if (this.scratch !== undefined) rmSync(this.scratch, { recursive: true, force: true });
    this.scratch = undefined;
    this.protectState();
  }

  /**
   * Passes `signal` to the running engine command, once, and resolves when it has exited (or after a
   * grace period: a Terraform that is still saving state is left to finish rather than killed).
   */
  interrupt(signal: NodeJS.Signals): Promise<void> {
    this.interruptedBy = signal;
    const child = this.running;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolvePromise) => {
      const timer = setTimeout(resolvePromise, ENGINE_STOP_GRACE_MS);
      child.once('exit', () => {
        clearTimeout(timer);
        resolvePromise();
      });
      child.kill(signal);
    });
  }

  /** `output -json`: the addresses and pinned host keys of the provisioned hosts. */
  async outputs(): Promise<EngineOutputs> {
    const { stdout } = await this.run(['output', '-json', '-no-color']);
    const raw = this.parseJson('output -json', stdout);
    const value = (raw as Record<string, { value?: unknown } | undefined> | null)?.[TERRAFORM_HOSTS_OUTPUT]?.value;
    if (typeof value !== 'object' || value === null) throw new Error(`${this.binary.name} output -json has no "${TERRAFORM_HOSTS_OUTPUT}" output; was the stack applied?`);
    const hosts: Record<string, EngineHost> = {};
    for (const [name, host] of Object.entries(value as Record<string, { address?: unknown; host_key?: unknown; port?: unknown }>)) {
      if (typeof host.address !== 'string' || typeof host.host_key !== 'string') throw new Error(`${this.binary.name} output "${TERRAFORM_HOSTS_OUTPUT}" lacks the address or host key of ${name}`);
      hosts[name] = { address: host.address, hostKey: host.host_key.trim(), port: typeof host.port === 'number' ? host.port : 22 };
    }
    return { raw, hosts };
  }

  /**
   * bin/plan replaces the plan directory whole on every run: a local state file inside it would be
   * deleted by the next plan, and with it the record of every server. Refuse before touching it.
   */
  private refuseStateInsidePlan(): void {
    const state = localStatePath(this.options.dir);
    if (state === undefined) return;
    const planDir = resolve(dirname(this.options.dir));
    const inside = relative(planDir, state);
    if (!inside.startsWith('..') && !isAbsolute(inside)) {
      throw new Error(
        `the local Terraform state ${relative(this.options.dir, state)} would live inside the plan directory ${planDir}, which every bin/plan replaces; ` +
          'synthesize the stack with the project directory (synthesizeInfra option projectDir) so the state stays in the project',
      );
    }
  }

  /**
   * Local state holds every resource's attributes, the servers' private host keys among them: 0600,
   * whatever mode an earlier engine run or an older upkeep left it with.
   */
  private protectState(): void {
    protectLocalState(this.options.dir);
  }

  private parseJson(what: string, text: string): unknown {
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`${this.binary.name} ${what} printed no JSON: ${this.secrets.redact(text.slice(0, 200))}`);
    }
  }

  private run(args: readonly string[], opts: { stream?: boolean; okCodes?: readonly number[] } = {}): Promise<RunResult> {
    const command = `${this.binary.name} ${args.join(' ')}`;
    const log = this.options.log ?? (() => {});
    log(`$ ${command}`);
    const env = { ...(this.options.env ?? process.env), TF_IN_AUTOMATION: '1', TF_INPUT: '0', ...this.options.secretEnv };
    return new Promise((resolvePromise, reject) => {
      if (this.interruptedBy !== undefined) {
        reject(new EngineError(command, null, `not started: interrupted by ${this.interruptedBy}`, ''));
        return;
      }
      // umask 077: the saved plan, state and everything else the engine writes is the user's alone.
      // Its own process group: a terminal's Ctrl-C reaches it once, through interrupt() (Terraform
      // takes a second interrupt as "stop now, whatever the state").
      const child = spawn('/bin/sh', ['-c', 'umask 077 && exec "$0" "$@"', this.binary.path, ...args], { cwd: this.options.dir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      this.running = child;
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      // Whole lines only, so a secret split across two chunks is still recognised and redacted.
      const lineLogger = () => {
        let pending = '';
        return {
          push: (chunk: Buffer) => {
            pending += chunk.toString('utf8');
            const lines = pending.split('\n');
            pending = lines.pop()!;
            for (const line of lines) log(this.secrets.redact(line));
          },
          flush: () => {
            if (pending) log(this.secrets.redact(pending));
            pending = '';
          },
        };
      };
      const logOut = lineLogger();
      const logErr = lineLogger();
      child.stdout.on('data', (chunk: Buffer) => {
        stdout.push(chunk);
        if (opts.stream) logOut.push(chunk);
      });
      child.stderr.on('data', (chunk: Buffer) => {
        stderr.push(chunk);
        if (opts.stream) logErr.push(chunk);
      });
      child.on('error', (error) => reject(new EngineError(command, null, `could not start ${this.binary.path}: ${error.message}`, '')));
      child.on('close', (code) => {
        this.running = undefined;
        logOut.flush();
        logErr.flush();
        if (code !== null && (opts.okCodes ?? [0]).includes(code)) {
          resolvePromise({ exitCode: code, stdout: Buffer.concat(stdout).toString('utf8') });
          return;
        }
        const tail = this.secrets.redact(Buffer.concat(stderr).toString('utf8')).trimEnd().split('\n').slice(-STDERR_TAIL_LINES).join('\n');
        const meaning = this.interruptedBy !== undefined ? `interrupted by ${this.interruptedBy}` : code === 1 ? 'the engine reported an error' : code === null ? 'terminated by a signal' : 'unexpected exit code';
        reject(new EngineError(command, code, meaning, tail));
      });
    });
  }
}
