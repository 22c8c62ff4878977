// A Transport into a directory holding an image root: the agent runs on this machine with every
// path under the root and `systemctl --root` for enablement; nothing is started or reloaded.

import type { RunOptions, RunResult, Transport } from './transport.ts';

export declare class LocalTransport implements Transport {
  readonly host: string;
  readonly roundTrips: number;
  /** `rootDir`: the image root (absolute). `host`: name for messages. @default basename of rootDir */
  constructor(rootDir: string, host?: string);
  run(script: string, input?: string | Uint8Array, options?: RunOptions): Promise<RunResult>;
  close(): Promise<void>;
}
