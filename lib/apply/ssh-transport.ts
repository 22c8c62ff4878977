// The system ssh client as a Transport: one multiplexed connection per host (ControlMaster), host
// key pinned (StrictHostKeyChecking=yes against our known_hosts), never a password prompt.

import type { RunOptions, RunResult, Transport } from './transport.ts';

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
  /** How long the idle master connection stays up. @default 60 */
  readonly controlPersistSeconds?: number;
}

export declare class SshTransport implements Transport {
  readonly host: string;
  readonly roundTrips: number;
  constructor(options: SshTransportOptions);
  run(script: string, input?: string | Uint8Array, options?: RunOptions): Promise<RunResult>;
  close(): Promise<void>;
}
