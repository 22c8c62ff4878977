// The applier's view of one host. Every operation is one run of lib/runtime/upkeep-agent.sh over a
// Transport (one round trip); the agent does the atomic work on the host, under the host's lock,
// and recovers an interrupted operation before anything else.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { shellQuote } from '../compile/env-file.ts';
import { RUNTIME_DIR, STATE_DIR } from '../compile/desired-state.ts';
import { lastLines, type RunOptions, type Transport } from './transport.ts';

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
  /** Aborting drops the connection mid-apply; the host recovers to its old or new generation. */
  readonly signal?: AbortSignal;
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
  /** Things that went wrong after the commit and did not undo it (e.g. the self-rollback could not be armed). */
  readonly warnings: readonly string[];
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
  /**
   * The current generation when its change has not passed its gates (and its group's soak) yet,
   * and how long ago, by the host's clock, it was switched to (see settle).
   */
  readonly unsettled: { readonly generation: string; readonly ageSeconds: number } | null;
  /** What recovery did while reading (the agent's first act), if anything. */
  readonly recovered: string | null;
  /** Whether a reboot is pending (apt's /var/run/reboot-required, dnf's needs-restarting -r); absent for an image root. */
  readonly rebootRequired?: boolean;
  /** This host's public key for sftp backups, once made (see lib/apply/backup-keys.ts). */
  readonly backupKey?: string;
  /** Public keys this host accepts for receiving backups, per sftp user (see lib/apply/backup-keys.ts). */
  readonly backupAccepts?: readonly { readonly user: string; readonly key: string }[];
  /** Its provisioned backup host as pinned here: "known_hosts LINE" and "ssh_config LINE" (see lib/apply/backup-keys.ts). */
  readonly backupHostPin?: readonly string[];
  /** Its provisioned peers as pinned here: "addresses LINE" and "signers LINE" (see lib/apply/peer-pins.ts). */
  readonly peerPin?: readonly string[];
}

export interface RollbackResult {
  readonly host: string;
  /** The generation the host was on. */
  readonly from: string | null;
  /** The generation the host is on now (null: back to before upkeep). */
  readonly to: string | null;
}

/**
 * A check's severity as its unit's exit status tells it (run-check.sh exits 0 OK, 1 WARNING,
 * 2 CRITICAL, 3 UNKNOWN); "failed": the unit itself failed (the check could not run); "missing":
 * no such unit on the host; "never": it has not run since it was installed or the host booted.
 */
export type CheckSeverity = 'ok' | 'warning' | 'critical' | 'unknown' | 'failed' | 'missing' | 'never';

export interface CheckResult {
  readonly unit: string;
  /** OK or WARNING: nothing a health gate stops for. */
  readonly ok: boolean;
  readonly severity: CheckSeverity;
  /** systemd's Result= and the main process's exit status, e.g. "exit-code 4", or missing/never. */
  readonly result: string;
}

const SEVERITY_OF_STATUS: Readonly<Record<string, CheckSeverity>> = { '0': 'ok', '1': 'warning', '2': 'critical', '3': 'unknown' };

function parseCheckLine(rest: string): CheckResult {
  const [unit = '', result = '', status = ''] = rest.split(' ');
  const severity: CheckSeverity =
    result === 'missing' || result === 'never' ? result : result === 'success' ? (SEVERITY_OF_STATUS[status] ?? 'failed') : 'failed';
  return { unit, ok: severity === 'ok' || severity === 'warning', severity, result: `${result} ${status}`.trim() };
}

/** The host just before a change: its checks' last results and its failed units (nothing is run). */
export interface HealthBefore {
  readonly host: string;
  readonly checks: readonly CheckResult[];
  readonly failedUnits: readonly string[];
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

export type HostAgentErrorKind = 'locked' | 'stale-plan' | 'failed' | 'not-on-generation' | 'invalid-bundle' | 'not-supported' | 'unrecovered';

/**
 * The agent refused or failed. Every kind except "unrecovered" leaves the host on its old
 * generation; "unrecovered" means the agent could not restore it and the next run retries.
 */
export class HostAgentError extends Error {
  readonly host: string;
  readonly kind: HostAgentErrorKind;
  /** For "locked": who holds the host's lock. */
  readonly holder?: LockHolder;
  /** For "stale-plan": the host's actual generation. */
  readonly currentGeneration?: string | null;

  constructor(host: string, kind: HostAgentErrorKind, message: string, extra: { holder?: LockHolder; currentGeneration?: string | null } = {}) {
    super(`${host}: ${message}`);
    this.name = 'HostAgentError';
    this.host = host;
    this.kind = kind;
    if (extra.holder !== undefined) this.holder = extra.holder;
    if (extra.currentGeneration !== undefined) this.currentGeneration = extra.currentGeneration;
  }
}

const AGENT_SOURCE = readFileSync(new URL('../runtime/upkeep-agent.sh', import.meta.url));
const AGENT_PATH = `${RUNTIME_DIR}/upkeep-agent`;

/** The agent's exit statuses (see lib/runtime/upkeep-agent.sh). */
const EXIT_KIND: Readonly<Record<number, HostAgentErrorKind>> = {
  10: 'locked',
  11: 'stale-plan',
  12: 'failed',
  13: 'invalid-bundle',
  14: 'not-supported',
  15: 'not-on-generation',
  20: 'unrecovered',
};

// Everything below reaches the agent as words it splits on spaces: accept only plain forms.
const WORD = /^[A-Za-z0-9._:@-]{1,200}$/;
const PATH = /^\/[A-Za-z0-9._/@+-]+$/;
const MODE = /^0?[0-7]{3}$|^[0-7]{4}$/;
const OWNER = /^[a-z_][a-z0-9_.-]*:[a-z_][a-z0-9_.-]*$/;
const UNIT = /^[A-Za-z0-9@._:-]+\.(service|timer|socket|path|target|mount)$/;
const PACKAGE = /^[a-z0-9][a-z0-9+.-]*$/;
const HOLDER = /^[\x20-\x7e]{1,200}$/;

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function word(host: string, what: string, value: string, pattern: RegExp = WORD): string {
  if (!pattern.test(value)) throw new HostAgentError(host, 'invalid-bundle', `${what} is not valid: ${JSON.stringify(value)}`);
  return value;
}

/** The script one run executes: optional variables, the agent's arguments, the agent itself. */
function agentScript(args: readonly string[], vars: Readonly<Record<string, string>> = {}): string {
  const prelude = Object.entries(vars).map(([name, value]) => `${name}=${shellQuote(value)}`);
  return [...prelude, `set -- ${args.map(shellQuote).join(' ')}`, AGENT_SOURCE.toString('utf8')].join('\n');
}

/**
 * The bundle as the agent reads it from stdin: a header of one line per item, then the contents
 * back to back in header order (the agent cuts them by length and checks each hash). Contents,
 * secrets included, never appear anywhere but here.
 */
export function encodeBundle(host: string, bundle: HostBundle): Buffer {
  const header = ['upkeep-bundle 1', `agent ${AGENT_SOURCE.length} ${sha256(AGENT_SOURCE)}`];
  const bodies: Uint8Array[] = [AGENT_SOURCE];
  const seen = new Set<string>();
  for (const file of [...bundle.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const path = word(host, 'file path', file.path, PATH);
    if (/\/\.{1,2}(\/|$)|\/\//.test(path)) throw new HostAgentError(host, 'invalid-bundle', `file path must be canonical: ${path}`);
    if (path === AGENT_PATH || path === STATE_DIR || path.startsWith(`${STATE_DIR}/`)) {
      throw new HostAgentError(host, 'invalid-bundle', `${path} belongs to upkeep itself and cannot be a managed file`);
    }
    if (seen.has(path)) throw new HostAgentError(host, 'invalid-bundle', `file ${path} appears twice`);
    seen.add(path);
    const mode = word(host, `mode of ${path}`, file.mode, MODE).padStart(4, '0');
    const owner = word(host, `owner of ${path}`, file.owner, OWNER);
    const content = typeof file.content === 'string' ? Buffer.from(file.content, 'utf8') : file.content;
    header.push(`file ${content.length} ${sha256(content)} ${mode} ${owner} ${path}`);
    bodies.push(content);
  }
  for (const unit of [...new Set(bundle.units)].sort()) header.push(`unit ${word(host, 'unit name', unit, UNIT)}`);
  for (const pkg of [...new Set(bundle.packages)].sort()) header.push(`package ${word(host, 'package name', pkg, PACKAGE)}`);
  header.push('end', '');
  return Buffer.concat([Buffer.from(header.join('\n'), 'utf8'), ...bodies]);
}

interface AgentOutput {
  /** Lines "key rest", in order. */
  readonly lines: readonly { readonly key: string; readonly rest: string }[];
  first(key: string): string | undefined;
  all(key: string): string[];
}

function parseOutput(stdout: string): AgentOutput {
  const lines = stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      const space = l.indexOf(' ');
      return space < 0 ? { key: l, rest: '' } : { key: l.slice(0, space), rest: l.slice(space + 1) };
    });
  return {
    lines,
    first: (key) => lines.find((l) => l.key === key)?.rest,
    all: (key) => lines.filter((l) => l.key === key).map((l) => l.rest),
  };
}

function parseLock(rest: string): LockHolder | null {
  if (rest === 'free') return null;
  const field = (name: string): string => new RegExp(`(?:^| )${name}=(.*?)(?= \\w+=|$)`).exec(rest)?.[1] ?? '';
  return { pid: Number(field('pid')), ageSeconds: Number(field('age')), from: field('from'), holder: field('holder') };
}

function generationOrNull(value: string | undefined): string | null {
  return value === undefined || value === '' || value === 'none' ? null : value;
}

/** Runs the agent; a non-zero status becomes a HostAgentError naming what the agent said. */
async function runAgent(t: Transport, what: string, args: readonly string[], input?: Uint8Array, vars?: Readonly<Record<string, string>>, runOptions: RunOptions = {}): Promise<AgentOutput> {
  const result = await t.run(agentScript(args, vars), input, runOptions);
  const out = parseOutput(result.stdout);
  if (result.exitCode === 0) return out;
  const kind = EXIT_KIND[result.exitCode] ?? 'failed';
  const message = out.all('error').at(-1) ?? `exit ${result.exitCode}${result.stderr ? `: ${lastLines(result.stderr, 3)}` : ''}`;
  const lock = out.first('lock');
  const holder = kind === 'locked' && lock !== undefined ? parseLock(lock) : null;
  throw new HostAgentError(t.host, kind, `${what}: ${message}${holder ? ` (held by ${holder.holder}, pid ${holder.pid} from ${holder.from}, for ${holder.ageSeconds} s; breakLock ends it)` : ''}`, {
    ...(holder ? { holder } : {}),
    ...(kind === 'stale-plan' ? { currentGeneration: generationOrNull(out.first('current')) } : {}),
  });
}

function fileState(rest: string): HostFileState {
  const [path = '', sha, mode, owner] = rest.split(' ');
  if (sha === undefined || sha === 'absent') return { path, sha256: null, mode: null, owner: null };
  return { path, sha256: sha, mode: mode ?? null, owner: owner ?? null };
}

/**
 * One round trip: the host's committed generation, its managed files as they are on disk now
 * (drift), units, failed units, lock holder. Recovers an interrupted operation first when the host
 * is not locked, so the answer is always a whole generation.
 */
export async function readState(t: Transport): Promise<HostState> {
  const out = await runAgent(t, 'read state', ['read-state']);
  const manifest = out.all('manifest').map(fileState);
  const files = out.all('disk').map(fileState);
  const drift: FileDrift[] = [];
  const onDisk = new Map(files.map((f) => [f.path, f]));
  manifest.forEach((recorded) => {
    const actual = onDisk.get(recorded.path);
    if (actual === undefined || actual.sha256 === null) return void drift.push({ path: recorded.path, fields: ['missing'] });
    const fields = (['content', 'mode', 'owner'] as const).filter((f) => (f === 'content' ? actual.sha256 !== recorded.sha256 : actual[f] !== recorded[f]));
    if (fields.length > 0) drift.push({ path: recorded.path, fields });
  });
  const lock = out.first('lock');
  return {
    host: t.host,
    generation: generationOrNull(out.first('generation')),
    planId: out.first('plan') || null,
    previousGeneration: generationOrNull(out.first('previous')),
    manifest,
    files,
    drift,
    units: out.all('unit').map((rest) => {
      const [name = '', enabled = '', active = ''] = rest.split(' ');
      return { name, enabled: enabled || 'absent', active };
    }),
    packages: out.all('package'),
    failedUnits: out.all('failed'),
    systemState: out.first('system') ?? 'unknown',
    lock: lock === undefined ? null : parseLock(lock),
    unconfirmedGeneration: out.first('unconfirmed') ?? null,
    unsettled: parseUnsettled(out.first('unsettled')),
    recovered: out.first('recovered') ?? null,
    ...(out.first('reboot-required') ? { rebootRequired: out.first('reboot-required') === 'yes' } : {}),
    ...(out.first('backup-key') ? { backupKey: out.first('backup-key') } : {}),
    backupAccepts: out.all('backup-accepts').map((rest) => {
      const space = rest.indexOf(' ');
      return { user: rest.slice(0, space), key: rest.slice(space + 1) };
    }),
    backupHostPin: out.all('backup-pin'),
    peerPin: out.all('peer-pin'),
  };
}

/**
 * One round trip: makes the host match `bundle` atomically, or leaves it on its old generation
 * (HostAgentError). Refuses when the host is neither on `baseGeneration` nor already on
 * `generation` (kind "stale-plan"), or when another session holds the host (kind "locked").
 */
export async function apply(t: Transport, bundle: HostBundle, options: ApplyOptions): Promise<ApplyResult> {
  const generation = word(t.host, 'generation', options.generation);
  const base = options.baseGeneration === null ? 'none' : word(t.host, 'base generation', options.baseGeneration);
  const planId = word(t.host, 'plan id', options.planId);
  const confirmSeconds = options.confirmTimeoutSeconds ?? 0;
  if (!Number.isInteger(confirmSeconds) || confirmSeconds < 0) throw new HostAgentError(t.host, 'invalid-bundle', `confirmTimeoutSeconds must be a whole number of seconds, got ${confirmSeconds}`);
  const holder = options.holder ?? 'upkeep';
  if (!HOLDER.test(holder)) throw new HostAgentError(t.host, 'invalid-bundle', 'holder must be one line of printable ASCII');
  const vars: Record<string, string> = { UPKEEP_HOLDER: holder };
  if (options.pauseAfterStep !== undefined) {
    vars.UPKEEP_PAUSE_AFTER = options.pauseAfterStep.step;
    vars.UPKEEP_PAUSE_SECONDS = String(options.pauseAfterStep.seconds);
  }
  const out = await runAgent(t, `apply generation ${generation}`, ['apply', generation, base, planId, String(confirmSeconds)], encodeBundle(t.host, bundle), vars, {
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  const words = (key: string): string[] => out.all(key).flatMap((rest) => rest.split(' ').filter(Boolean));
  return {
    host: t.host,
    generation,
    previousGeneration: generationOrNull(out.first('previous')),
    changed: out.first('result') === 'changed',
    filesWritten: out.all('wrote'),
    filesRemoved: out.all('removed'),
    unitsEnabled: out.all('enabled'),
    unitsDisabled: out.all('disabled'),
    unitsRestarted: out.all('restarted'),
    daemonReloaded: out.lines.some((l) => l.key === 'daemon-reload'),
    packagesInstalled: words('installed'),
    rollbackUnit: out.first('armed') ?? null,
    recovered: out.first('recovered') ?? null,
    warnings: out.all('warning'),
  };
}

/** "GEN AGE" as read-state reports an unsettled change. */
function parseUnsettled(rest: string | undefined): HostState['unsettled'] {
  if (rest === undefined) return null;
  const [generation = '', age = ''] = rest.split(' ');
  // A host whose clock went backwards reports a negative age: counted as just switched.
  return { generation, ageSeconds: /^-?\d+$/.test(age) ? Math.max(0, Number(age)) : 0 };
}

/**
 * Records that `generation` passed its gates (and its group's soak): the change is done. Until
 * then a later run gates and soaks it again, and a rollback of a repair returns to what it repaired.
 */
export async function settle(t: Transport, generation: string): Promise<void> {
  await runAgent(t, `settle generation ${generation}`, ['settle', word(t.host, 'generation', generation)]);
}

/** Cancels the self-rollback of `generation`; call over a new connection to prove the host is reachable. */
export async function confirm(t: Transport, generation: string): Promise<void> {
  await runAgent(t, `confirm generation ${generation}`, ['confirm', word(t.host, 'generation', generation)]);
}

/**
 * Returns the host to the generation before the current one, byte for byte as it was on disk
 * (files, modes, owners, enabled and active units); after a repair of the current generation that
 * is not settled yet, to the state it repaired. `toGeneration` asserts which generation that is.
 */
export async function rollback(t: Transport, options: { readonly toGeneration?: string | null } = {}): Promise<RollbackResult> {
  const args = ['rollback'];
  if (options.toGeneration !== undefined) args.push(options.toGeneration === null ? 'none' : word(t.host, 'generation', options.toGeneration));
  const out = await runAgent(t, 'rollback', args);
  return { host: t.host, from: generationOrNull(out.first('from')), to: generationOrNull(out.first('to')) };
}

/** Runs the host's check services now and reads their results, the system state and the managed timers. */
export async function healthGate(t: Transport, checkUnits: readonly string[]): Promise<HealthReport> {
  const units = checkUnits.map((u) => word(t.host, 'check unit', u, UNIT));
  const out = await runAgent(t, 'health gate', ['health', ...units]);
  const checks = out.all('check').map(parseCheckLine);
  const systemState = out.first('system') ?? 'unknown';
  const failedUnits = out.all('failed');
  const inactiveTimers = out
    .all('timer')
    .map((rest) => rest.split(' '))
    .filter(([, active]) => active !== 'active')
    .map(([unit = '']) => unit);
  const problems = [
    ...checks.filter((c) => !c.ok).map((c) => `check ${c.unit} ${c.severity === 'failed' ? 'failed' : `is ${c.severity.toUpperCase()}`} (${c.result})`),
    ...(systemState === 'running' ? [] : [`system is ${systemState}${failedUnits.length > 0 ? `: failed units ${failedUnits.join(', ')}` : ''}`]),
    ...inactiveTimers.map((u) => `timer ${u} is not active`),
  ];
  return { host: t.host, ok: problems.length === 0, checks, systemState, failedUnits, inactiveTimers, problems };
}

/** Reads the last result of each check unit and the failed units, running nothing: the state before a change. */
export async function healthBefore(t: Transport, checkUnits: readonly string[]): Promise<HealthBefore> {
  const units = checkUnits.map((u) => word(t.host, 'check unit', u, UNIT));
  const out = await runAgent(t, 'health before the change', ['health-before', ...units]);
  return { host: t.host, checks: out.all('check').map(parseCheckLine), failedUnits: out.all('failed') };
}

/** Ends the session holding the host's lock and recovers what it left; returns who held it (null: nobody). */
export async function breakLock(t: Transport): Promise<LockHolder | null> {
  const out = await runAgent(t, 'break lock', ['break-lock']);
  const lock = out.first('lock');
  return lock === undefined ? null : parseLock(lock);
}
