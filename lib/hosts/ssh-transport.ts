// The system ssh client as a Transport: one multiplexed connection per host (ControlMaster), host
// key pinned (StrictHostKeyChecking=yes against our known_hosts), never a password prompt. The
// script travels as one single-quoted argument to `sh -c`; its input (file contents, secrets)
// travels on stdin, so neither a remote shell nor a process listing ever sees policy data.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shellQuote } from '../compile/env-file.ts';
import { DEFAULT_RUN_TIMEOUT_MS, TransportError, type RunOptions, type RunResult, type Transport } from './transport.ts';

export interface SshTransportOptions {
  /** Host name for messages. */
  readonly host: string;
  /** Address to connect to (name or IP). */
  readonly address: string;
  /** @default 22 */
  readonly port?: number;
  /** @default "root" */
  readonly user?: string;
  /** known_hosts pinning the host's key; connections to a host whose key differs fail. */
  readonly knownHostsFile: string;
  /** Private key to log in with; the ssh agent/default keys otherwise. */
  readonly identityFile?: string;
  /** @default 10 */
  readonly connectTimeoutSeconds?: number;
  /** How long the idle master connection stays up. @default 300 */
  readonly controlPersistSeconds?: number;
}

/** ssh exits 255 when ssh itself failed; any other status is the remote command's. */
const SSH_FAILED = 255;

const ADDRESS = /^[A-Za-z0-9][A-Za-z0-9.:-]*$/;
const USER = /^[a-z_][a-z0-9_-]*$/;

export class SshTransport implements Transport {
  readonly host: string;
  #roundTrips = 0;
  readonly #options: SshTransportOptions;
  readonly #controlDir: string;
  #closed = false;
  #master: Promise<void> | undefined;

  constructor(options: SshTransportOptions) {
    if (!ADDRESS.test(options.address)) throw new TypeError(`${options.host}: not an ssh address: ${JSON.stringify(options.address)}`);
    if (options.user !== undefined && !USER.test(options.user)) throw new TypeError(`${options.host}: not a user name: ${JSON.stringify(options.user)}`);
    this.host = options.host;
    this.#options = options;
    // A private directory: the control socket grants a shell on the host to whoever can open it.
    this.#controlDir = mkdtempSync(join(tmpdir(), 'upkeep-ssh-'));
  }

  get roundTrips(): number {
    return this.#roundTrips;
  }

  /** The ssh arguments up to and including the destination; the command follows. */
  #sshArgs(): string[] {
    const o = this.#options;
    const args = [
      // Only #startMaster makes a master: one made by a command's ssh would hold that command's
      // pipes open. Without a live master (persist time over) a command connects on its own.
      '-o', 'ControlMaster=no',
      '-o', `ControlPath=${join(this.#controlDir, '%C')}`,
      '-o', 'StrictHostKeyChecking=yes',
      '-o', `UserKnownHostsFile=${o.knownHostsFile}`,
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'BatchMode=yes',
      '-o', `ConnectTimeout=${o.connectTimeoutSeconds ?? 10}`,
      // A host that vanishes mid-session is noticed in ~15 s instead of at the TCP timeout.
      '-o', 'ServerAliveInterval=5',
      '-o', 'ServerAliveCountMax=3',
      '-p', String(o.port ?? 22),
      '-l', o.user ?? 'root',
    ];
    if (o.identityFile !== undefined) args.push('-i', o.identityFile, '-o', 'IdentitiesOnly=yes');
    args.push('-T', '--', o.address);
    return args;
  }

  /** The command line as errors show it: everything but the script. */
  #describe(): string {
    const o = this.#options;
    return `ssh -p ${o.port ?? 22} ${o.user ?? 'root'}@${o.address} sh -c <script>`;
  }

  /**
   * Starts the control master once, detached (`-f`) with no pipes of ours: a master started by a
   * command's own ssh would inherit that command's pipes and keep them open after it ends.
   */
  #startMaster(): Promise<void> {
    this.#master ??= new Promise<void>((resolve, reject) => {
      const child = spawn('ssh', ['-o', 'ControlMaster=yes', '-N', '-f', '-o', `ControlPersist=${this.#options.controlPersistSeconds ?? 300}`, ...this.#sshArgs()], { stdio: ['ignore', 'ignore', 'pipe'] });
      const stderr: Buffer[] = [];
      child.stderr.on('data', (b: Buffer) => stderr.push(b));
      child.on('error', (error) => reject(new TransportError({ host: this.host, command: 'ssh -o ControlMaster=yes -N -f', exitCode: null, stderr: '', reason: `cannot start ssh: ${error.message}` })));
      child.on('exit', (code) => {
        if (code === 0) return resolve();
        this.#master = undefined;
        reject(new TransportError({ host: this.host, command: this.#describe(), exitCode: code, stderr: Buffer.concat(stderr).toString('utf8'), reason: 'ssh failed: host unreachable, host key not the pinned one, or login refused' }));
      });
    });
    return this.#master;
  }

  async run(script: string, input?: string | Uint8Array, options: RunOptions = {}): Promise<RunResult> {
    if (this.#closed) throw new Error(`${this.host}: transport is closed`);
    this.#roundTrips++;
    await this.#startMaster();
    const command = this.#describe();
    return new Promise((resolve, reject) => {
      const child = spawn('ssh', [...this.#sshArgs(), `sh -c ${shellQuote(script)}`], { stdio: ['pipe', 'pipe', 'pipe'] });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let killedFor: string | undefined;
      const kill = (reason: string): void => {
        killedFor ??= reason;
        child.kill('SIGKILL');
      };
      const timeoutMs = options.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS;
      const timer = setTimeout(() => kill(`no answer within ${timeoutMs} ms`), timeoutMs);
      const onAbort = (): void => kill('aborted');
      options.signal?.addEventListener('abort', onAbort, { once: true });
      child.stdout.on('data', (b: Buffer) => stdout.push(b));
      child.stderr.on('data', (b: Buffer) => stderr.push(b));
      // The remote side may exit without reading all of its input (a refused apply).
      child.stdin.on('error', () => undefined);
      child.stdin.end(input ?? '');
      child.on('error', (error) => {
        clearTimeout(timer);
        reject(new TransportError({ host: this.host, command, exitCode: null, stderr: '', reason: `cannot start ssh: ${error.message}` }));
      });
      // A multiplexed client hands its stdio to the master, which holds it until the remote
      // session ends: a killed client is done at 'exit', without waiting for 'close'.
      child.on('exit', () => {
        if (killedFor === undefined) return;
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        child.stdout.destroy();
        child.stderr.destroy();
        reject(new TransportError({ host: this.host, command, exitCode: null, stderr: Buffer.concat(stderr).toString('utf8'), reason: killedFor }));
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        const err = Buffer.concat(stderr).toString('utf8');
        if (killedFor !== undefined) {
          return;
        } else if (code === SSH_FAILED || code === null) {
          reject(new TransportError({ host: this.host, command, exitCode: code, stderr: err, reason: 'ssh failed: connection lost, host unreachable, host key not the pinned one, or login refused' }));
        } else {
          resolve({ stdout: Buffer.concat(stdout).toString('utf8'), stderr: err, exitCode: code });
        }
      });
    });
  }

  /** Stops the control master, which ends every session still running over it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await new Promise<void>((resolve) => {
      const child = spawn('ssh', ['-O', 'exit', ...this.#sshArgs()], { stdio: 'ignore' });
      child.on('error', () => resolve());
      child.on('exit', () => resolve());
    });
    rmSync(this.#controlDir, { recursive: true, force: true });
  }
}
