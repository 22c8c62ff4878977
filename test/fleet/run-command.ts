// Runs a program without a shell (arguments are passed as-is, so nothing needs quoting) and
// collects its output. Used by the test fleet for debootstrap, ssh-keygen and ssh.
import { spawn } from 'node:child_process';

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

export interface RunOptions {
  /** Kill the program (SIGKILL) after this long; the result then has exit code 124 like timeout(1). */
  readonly timeoutMs?: number;
  readonly input?: string;
  readonly env?: NodeJS.ProcessEnv;
}

export function runCommand(program: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${program}: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8') + (timedOut ? `\n${program}: killed after ${options.timeoutMs} ms` : ''),
        exitCode: timedOut ? 124 : code ?? 128 + (signal ? 9 : 0),
      });
    });
    // A program that exits without reading its input closes the pipe: that is its business, and its
    // exit code says how it went.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** Like runCommand, but a non-zero exit is an error naming the command, its exit code and the end of its stderr. */
export async function runChecked(program: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await runCommand(program, args, options);
  if (result.exitCode !== 0) {
    const tail = result.stderr.trim().split('\n').slice(-15).join('\n');
    throw new Error(`${program} ${args.join(' ')} exited with ${result.exitCode}:\n${tail}`);
  }
  return result;
}
