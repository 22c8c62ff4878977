// How the applier talks to one host. A transport runs a POSIX sh script on the host with optional
// bytes on its stdin; one `run` is one round trip (for ssh: one command over a multiplexed
// connection). Everything policy-derived travels on stdin, never in argv, so secrets stay out of
// process listings and nothing from a policy is parsed by a remote shell.

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  /** The script's exit status. */
  readonly exitCode: number;
}

export interface RunOptions {
  /**
   * Kill the session after this long and fail with a TransportError.
   * @default 600_000
   */
  readonly timeoutMs?: number;
  /** Aborting kills this session (for ssh: the client process; the host sees the connection drop). */
  readonly signal?: AbortSignal;
}

export interface Transport {
  /** The host's name, used in every error message. */
  readonly host: string;
  /** Number of `run` calls made so far: each is one round trip to the host. */
  readonly roundTrips: number;
  /**
   * Runs `script` with `sh` on the host, `input` on its stdin. Resolves with any exit status the
   * script returns; rejects with a TransportError when the host cannot be reached or the time is up.
   */
  run(script: string, input?: string | Uint8Array, options?: RunOptions): Promise<RunResult>;
  /** Releases the connection (ssh: stops the control master). Idempotent. */
  close(): Promise<void>;
}

export const DEFAULT_RUN_TIMEOUT_MS = 600_000;

/** A host that could not be reached, refused us, or did not answer in time. */
export class TransportError extends Error {
  readonly host: string;
  /** What we ran, without its script body (e.g. "ssh -p 22 root@127.0.1.1 sh -c <script>"). */
  readonly command: string;
  /** The exit status, or null when the process was killed (timeout). */
  readonly exitCode: number | null;
  readonly stderr: string;

  constructor(options: { host: string; command: string; exitCode: number | null; stderr: string; reason: string }) {
    const tail = lastLines(options.stderr, 5);
    super(`${options.host}: ${options.reason} (${options.command}, exit ${options.exitCode ?? 'killed'})${tail ? `:\n${tail}` : ''}`);
    this.name = 'TransportError';
    this.host = options.host;
    this.command = options.command;
    this.exitCode = options.exitCode;
    this.stderr = options.stderr;
  }
}

/** The last `n` non-empty lines of a command's stderr, for error messages. */
export function lastLines(text: string, n: number): string {
  return text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0)
    .slice(-n)
    .join('\n');
}

/** The first line of an error's message: journal details and progress lines stay one line. */
export function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n', 1)[0] ?? '';
}

/**
 * Maps `fn` over `items` with at most `limit` calls in flight; results keep the input order.
 * Rejects with the first error after the calls already started have settled, so no work is left
 * running unobserved.
 */
export async function pMap<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`pMap: limit must be a positive integer, got ${limit}`);
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index] as T, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
  return results;
}
