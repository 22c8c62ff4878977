// A Transport into a directory holding an image root: the agent runs on this machine with every
// path under the root (UPKEEP_ROOT) and `systemctl --root` for enablement; nothing is started,
// stopped or reloaded, because no system is running from that directory.

import { spawn } from 'node:child_process';
import { basename, isAbsolute } from 'node:path';
import { DEFAULT_RUN_TIMEOUT_MS, TransportError, type RunOptions, type RunResult, type Transport } from './transport.ts';

export class LocalTransport implements Transport {
  readonly host: string;
  readonly rootDir: string;
  #roundTrips = 0;

  /** `rootDir`: the image root (absolute). `host`: name for messages. @default basename of rootDir */
  constructor(rootDir: string, host?: string) {
    if (!isAbsolute(rootDir) || rootDir === '/') throw new TypeError(`LocalTransport needs an absolute image root other than /, got ${JSON.stringify(rootDir)}`);
    this.rootDir = rootDir.replace(/\/+$/, '');
    this.host = host ?? basename(this.rootDir);
  }

  get roundTrips(): number {
    return this.#roundTrips;
  }

  run(script: string, input?: string | Uint8Array, options: RunOptions = {}): Promise<RunResult> {
    this.#roundTrips++;
    const command = `UPKEEP_ROOT=${this.rootDir} sh -c <script>`;
    return new Promise((resolve, reject) => {
      // Its own process group, as an sshd session has: breaking the lock ends the whole group.
      const child = spawn('sh', ['-c', script], { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: { ...process.env, UPKEEP_ROOT: this.rootDir } });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let killedFor: string | undefined;
      const kill = (reason: string): void => {
        killedFor ??= reason;
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      };
      const timeoutMs = options.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS;
      const timer = setTimeout(() => kill(`no answer within ${timeoutMs} ms`), timeoutMs);
      const onAbort = (): void => kill('aborted');
      options.signal?.addEventListener('abort', onAbort, { once: true });
      child.stdout.on('data', (b: Buffer) => stdout.push(b));
      child.stderr.on('data', (b: Buffer) => stderr.push(b));
      child.stdin.on('error', () => undefined);
      child.stdin.end(input ?? '');
      child.on('error', (error) => {
        clearTimeout(timer);
        reject(new TransportError({ host: this.host, command, exitCode: null, stderr: '', reason: `cannot start sh: ${error.message}` }));
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        const err = Buffer.concat(stderr).toString('utf8');
        if (killedFor !== undefined || code === null) {
          reject(new TransportError({ host: this.host, command, exitCode: null, stderr: err, reason: killedFor ?? 'killed by a signal' }));
        } else {
          resolve({ stdout: Buffer.concat(stdout).toString('utf8'), stderr: err, exitCode: code });
        }
      });
    });
  }

  async close(): Promise<void> {}
}
