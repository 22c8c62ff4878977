// The applier's view of one host. Every operation is one run of lib/runtime/upkeep-agent.sh over a
// Transport (one round trip); the agent does the atomic work on the host, under the host's lock,
// and recovers an interrupted operation before anything else.

import type { Transport } from './transport.ts';

/** A file as the orchestrator sends it: secrets already resolved, content travels on stdin only. */
export interface BundleFile {
  /** Absolute path on the host. */
  readonly path: string;
  /** Octal mode, e.g. "0644". */
  readonly mode: string;
  /** "user:group". */
  readonly owner: string;
  readonly content: string | Uint8Array;
}

/** Everything one host must have after apply (a resolved HostDesiredState). */
export interface HostBundle {
  readonly files: readonly BundleFile[];
  /** Units to enable; timers among them are also started. */
  readonly units: readonly string[];
  /** Packages installed (apt-get or dnf) before switching; present ones are left alone. */
  readonly packages: readonly string[];
}

export interface ApplyOptions {
  readonly planId: string;
  /** The generation this bundle is (PlannedHost.generation). */
  readonly generation: string;
  /** The generation the plan was computed against; the host must be on it (or already on `generation`). */
  readonly baseGeneration: string | null;
  /**
   * Seconds after which the host returns to its previous generation by itself unless `confirm` is
   * called (over a new connection). 0 disables the self-rollback.
   * @default 0
   */
  readonly confirmTimeoutSeconds?: number;
  /** Who is applying, recorded with the lock (e.g. "pipeline 1234"). @default "upkeep" */
  readonly holder?: string;
  /** Test hook: the agent sleeps this long after the named step (to cut the connection there). */
  readonly pauseAfterStep?: { readonly step: ApplyStep; readonly seconds: number };
  readonly timeoutMs?: number;
}

/** The agent's steps in order; the switch is everything between `journal` and `commit`. */
export type ApplyStep = 'recover' | 'lock' | 'stage' | 'packages' | 'snapshot' | 'journal' | 'files' | 'units' | 'commit' | 'arm';

export interface ApplyResult {
  readonly host: string;
  readonly generation: string;
  /** The generation the host was on before (null: first apply). */
  readonly previousGeneration: string | null;
  /** False when the host already matched: nothing was written, reloaded or restarted. */
  readonly changed: boolean;
  readonly filesWritten: readonly string[];
  readonly filesRemoved: readonly string[];
  readonly unitsEnabled: readonly string[];
  readonly unitsDisabled: readonly string[];
  /** Units restarted because their unit file changed. */
  readonly unitsRestarted: readonly string[];
  readonly daemonReloaded: boolean;
  readonly packagesInstalled: readonly string[];
  /** The transient unit that rolls the host back unless confirmed, if one was armed. */
  readonly rollbackUnit: string | null;
  /** What recovery found and did before this apply (e.g. "undid interrupted switch a->b"), if anything. */
  readonly recovered: string | null;
}

export interface LockHolder {
  readonly pid: number;
  readonly holder: string;
  /** Where the holder connected from (SSH_CONNECTION), "local" for a local transport. */
  readonly from: string;
  readonly ageSeconds: number;
}

export interface HostFileState {
  readonly path: string;
  /** sha256 of the content on disk now; null when the file is missing. */
  readonly sha256: string | null;
  readonly mode: string | null;
  readonly owner: string | null;
}

export interface FileDrift {
  readonly path: string;
  readonly fields: readonly ('content' | 'mode' | 'owner' | 'missing')[];
}

export interface HostState {
  readonly host: string;
  /** The committed generation (null: upkeep never applied here). */
  readonly generation: string | null;
  readonly planId: string | null;
  /** The generation a rollback returns to. */
  readonly previousGeneration: string | null;
  /** Managed files as the manifest records them. */
  readonly manifest: readonly HostFileState[];
  /** Managed files as they are on disk now. */
  readonly files: readonly HostFileState[];
  /** Differences between the two. */
  readonly drift: readonly FileDrift[];
  /** Units the manifest enables, with systemd's answers. */
  readonly units: readonly { readonly name: string; readonly enabled: string; readonly active: string }[];
  readonly packages: readonly string[];
  /** Every failed unit on the host (not only ours). */
  readonly failedUnits: readonly string[];
  /** `systemctl is-system-running` ("running", "degraded", ...; "offline" for an image root). */
  readonly systemState: string;
  readonly lock: LockHolder | null;
  /** A generation that will roll itself back unless confirmed. */
  readonly unconfirmedGeneration: string | null;
  /** What recovery did while reading (the agent's first act), if anything. */
  readonly recovered: string | null;
}

export interface RollbackResult {
  readonly host: string;
  /** The generation the host was on. */
  readonly from: string | null;
  /** The generation the host is on now (null: back to before upkeep). */
  readonly to: string | null;
}

export interface CheckResult {
  readonly unit: string;
  readonly ok: boolean;
  /** systemd's Result= and the main process's exit status, e.g. "exit-code 2". */
  readonly result: string;
}

export interface HealthReport {
  readonly host: string;
  readonly ok: boolean;
  readonly checks: readonly CheckResult[];
  readonly systemState: string;
  readonly failedUnits: readonly string[];
  /** Managed timers that are not active. */
  readonly inactiveTimers: readonly string[];
  /** One line per problem, for the journal and the summary. */
  readonly problems: readonly string[];
}

export type HostAgentErrorKind = 'locked' | 'stale-plan' | 'failed' | 'invalid-bundle' | 'not-supported';

/** The agent refused or failed; the host is on its old generation unless `kind` says otherwise. */
export declare class HostAgentError extends Error {
  readonly host: string;
  readonly kind: HostAgentErrorKind;
  /** For "locked": who holds the host's lock. */
  readonly holder?: LockHolder;
  /** For "stale-plan": the host's actual generation. */
  readonly currentGeneration?: string | null;
}

/** One round trip: the host's committed generation, managed files as on disk now, units, lock. */
export declare function readState(t: Transport): Promise<HostState>;
/** One round trip: makes the host match `bundle` atomically, or leaves it on its old generation. */
export declare function apply(t: Transport, bundle: HostBundle, options: ApplyOptions): Promise<ApplyResult>;
/** Cancels the self-rollback of `generation`; call over a new connection to prove the host is reachable. */
export declare function confirm(t: Transport, generation: string): Promise<void>;
/** Restores the previous generation byte for byte (files, modes, owners, enabled units). */
export declare function rollback(t: Transport, options?: { readonly toGeneration?: string | null }): Promise<RollbackResult>;
/** Runs the host's check services now and reads their results, the system state and the managed timers. */
export declare function healthGate(t: Transport, checkUnits: readonly string[]): Promise<HealthReport>;
/** Ends the session holding the host's lock (after recovery the host is on its old or new generation); returns who held it. */
export declare function breakLock(t: Transport): Promise<LockHolder | null>;
