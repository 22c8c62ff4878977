/**
 * A real fleet on one machine for end-to-end tests: one systemd-nspawn container per host, each
 * booting real systemd from a shared Debian base image through an overlay, reachable over ssh on
 * its own loopback address with a pinned host key.
 *
 * Usage:
 *   const support = fleetSupport();
 *   describe.skipIf(!support.ok)('...', () => {
 *     let fleet: TestFleet;
 *     beforeAll(async () => { fleet = await startFleet(['web1', 'backup1']); }, FLEET_HOOK_TIMEOUT_MS);
 *     afterAll(() => fleet?.stop(), FLEET_HOOK_TIMEOUT_MS);
 *   });
 */

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

export interface TestHost {
  /** The host name given to startFleet; also the container's hostname. */
  readonly name: string;
  /** Loopback address the host's sshd listens on, e.g. "127.0.1.5". */
  readonly address: string;
  readonly port: 22;
  /** The host's public ssh key as one line: "ssh-ed25519 AAAA...". */
  readonly hostKey: string;
  /** The overlay's upper directory: every file the host wrote or changed appears here. */
  readonly upperDir: string;
  /** How the last boot ended: systemd's `is-system-running` answer. */
  readonly bootState: 'running' | 'degraded';
  /** Runs a command as root on the host over ssh (strict host key checking). Never throws for a non-zero exit. */
  ssh(command: string): Promise<CommandResult>;
  /** Clean shutdown (SIGTERM to systemd-nspawn): simulates a host going down for maintenance. */
  stop(): Promise<void>;
  /** Boots the host again with the same upper directory and waits until it is up. */
  start(): Promise<void>;
  /** SIGKILL the container: simulates a power loss. */
  kill(): Promise<void>;
}

export interface TestFleet {
  readonly hosts: readonly TestHost[];
  /** known_hosts pinning every host's key under its address. */
  readonly knownHostsFile: string;
  /** The operator's private ed25519 key, authorised for root on every host. */
  readonly identityFile: string;
  /** Temporary directory holding keys, upper dirs and boot logs; removed by stop(). */
  readonly workDir: string;
  /** ssh options every connection to the fleet needs (identity, pinned known_hosts, batch mode). */
  readonly sshOptions: readonly string[];
  /** The host with this name; throws naming the known hosts when there is none. */
  host(name: string): TestHost;
  /** Stops every host (SIGTERM, then SIGKILL after a timeout) and removes workDir. Idempotent. */
  stop(): Promise<void>;
}

export interface StartFleetOptions {
  /**
   * Extra Debian packages baked into the base image (a separate cached image per package list).
   * @default []
   */
  readonly extraPackages?: readonly string[];
  /**
   * How long one host may take to boot to `running`/`degraded`.
   * @default 120_000
   */
  readonly bootTimeoutMs?: number;
}

export type FleetSupport = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Timeouts the fleet tests need in vitest (a cold base image build takes minutes). */
export const FLEET_HOOK_TIMEOUT_MS = 900_000;
export const FLEET_TEST_TIMEOUT_MS = 180_000;

export declare function fleetSupport(): FleetSupport;
export declare function startFleet(names: readonly string[], options?: StartFleetOptions): Promise<TestFleet>;
