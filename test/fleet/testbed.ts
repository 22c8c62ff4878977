/**
 * A real fleet on one machine for end-to-end tests: one systemd-nspawn container per host, each
 * booting real systemd from a shared Debian base image through an overlay, reachable over ssh on
 * its own loopback address with a pinned host key.
 *
 * Usage:
 *   describe.skipIf(!fleetAvailable('the applier end to end'))('...', () => {
 *     let fleet: TestFleet;
 *     beforeAll(async () => { fleet = await startFleet(['web1', 'backup1']); }, FLEET_HOOK_TIMEOUT_MS);
 *     afterAll(() => fleet?.stop(), FLEET_HOOK_TIMEOUT_MS);
 *   });
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { missingPrograms, SETUP_COMMAND, type MachineProgram } from '../programs.ts';
import { BASE_IMAGE_SUITE, ensureBaseImage, imageSystemdVersion, type ImageSuite } from './base-image.ts';
import { createHostCgroups, removeHostCgroups } from './host-cgroup.ts';
import { isAlive, readOwner, release, tryClaim, writeOwner, type OwnerRecord } from './owner-lock.ts';
import { removeTree } from './remove-tree.ts';
import { runChecked, runCommand, type RunResult } from './run-command.ts';
import { sshPortBlocked } from './ssh-port.ts';

export type CommandResult = RunResult;

export interface SshOptions {
  /** Kill ssh after this long; the result then has exit code 124. @default 120_000 */
  readonly timeoutMs?: number;
  /** Written to the remote command's stdin. */
  readonly input?: string;
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
  /** The container's console (systemd's boot and shutdown messages), kept across restarts. */
  readonly consoleLogFile: string;
  /** Whether the container is up (between start() and stop()/kill()). */
  readonly running: boolean;
  /** How often the host rebooted itself (`systemctl reboot` inside); the testbed boots it again each time. */
  readonly reboots: number;
  /** Runs a command as root on the host over ssh (strict host key checking). Never throws for a non-zero exit; 255 means ssh itself failed. */
  ssh(command: string, options?: SshOptions): Promise<CommandResult>;
  /** Clean shutdown (SIGTERM to systemd-nspawn): simulates a host going down for maintenance. */
  stop(): Promise<void>;
  /** Boots the host again with the same upper directory and waits until it is up. */
  start(): Promise<void>;
  /** SIGKILL the container: simulates a power loss. */
  kill(): Promise<void>;
  /** The same, at once and without waiting for the container to end: cuts a host off at an exact point of a run. */
  killNow(): void;
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
   * The Debian suite the hosts run and the packages its image is made with (a separate cached
   * image per suite), e.g. Debian testing for the rolling channel (test/fleet/testing-suite.ts).
   * @default BASE_IMAGE_SUITE (bookworm with BASE_PACKAGES)
   */
  readonly suite?: ImageSuite;
  /**
   * How long one host may take to boot to `running`/`degraded`.
   * @default 120_000
   */
  readonly bootTimeoutMs?: number;
}

export type FleetSupport = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export { FLEET_HOOK_TIMEOUT_MS, FLEET_TEST_TIMEOUT_MS } from './vitest-project.ts';

const ADDRESS_PREFIX = '127.0.1.';
/** How long a clean shutdown may take before the container is killed. */
const STOP_TIMEOUT_MS = 60_000;
/** How long systemd-nspawn may take to notice its killed container has ended. */
const KILL_TIMEOUT_MS = 15_000;
/** systemd-nspawn's exit status when its container rebooted (systemd-nspawn(1)). */
const REBOOT_EXIT = 133;
const HOST_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * systemd 256 and later refuse to boot on a cgroup v1 or hybrid hierarchy, which systemd-nspawn
 * gives a container on a machine that mounts the hybrid one (as machines of this kind do); asked
 * with SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 it gives the unified (v2) hierarchy instead.
 */
const FIRST_SYSTEMD_WITHOUT_CGROUP_V1 = 256;

const REQUIRED_PROGRAMS: readonly MachineProgram[] = ['systemd-nspawn', 'debootstrap', 'ssh', 'ssh-keygen'];

export function fleetSupport(): FleetSupport {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'not running as root (systemd-nspawn and debootstrap need root)' };
  const missing = missingPrograms(REQUIRED_PROGRAMS);
  if (missing.length > 0) return { ok: false, reason: `missing ${missing.join(', ')}; install everything the tests use with: ${SETUP_COMMAND}` };
  const portBlocked = sshPortBlocked();
  if (portBlocked !== undefined) return { ok: false, reason: portBlocked };
  return { ok: true };
}

/**
 * Whether fleet tests can run here, for `describe.skipIf(!fleetAvailable('...'))`. Prints a loud
 * warning when they cannot; throws instead when UPKEEP_REQUIRE_FLEET=1 (CI), so a machine that
 * lost a capability fails rather than silently skipping the end-to-end tests.
 */
export function fleetAvailable(what: string, support: FleetSupport = fleetSupport(), env: NodeJS.ProcessEnv = process.env): boolean {
  if (support.ok) return true;
  if (env.UPKEEP_REQUIRE_FLEET === '1') {
    throw new Error(`UPKEEP_REQUIRE_FLEET=1 but the test fleet cannot run here: ${support.reason}`);
  }
  console.warn(`!!! SKIPPING ${what}: the test fleet cannot run here: ${support.reason}`);
  return false;
}

// ---------------------------------------------------------------------------------------------
// Address claims: each host's loopback address is claimed by this process for the fleet's life,
// so concurrent test runs on one machine never share an address. A claim records the work
// directory and the systemd-nspawn process, so a later run can clean up after a crashed one.

function claimsRoot(): string {
  return process.env.UPKEEP_TESTBED_RUN ?? '/run/upkeep-testbed';
}

interface AddressOwner extends OwnerRecord {
  readonly workDir: string;
  readonly nspawnPid?: number;
  readonly cgroups?: readonly string[];
}

/** The process ids whose parent is pid (the container's init is systemd-nspawn's child). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name in parentheses may contain spaces; the parent pid is the 2nd field after it.
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent === pid) children.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return children;
}

function isNspawn(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]?.endsWith('systemd-nspawn') === true;
  } catch {
    return false;
  }
}

function signal(pid: number, signalName: NodeJS.Signals): void {
  try {
    process.kill(pid, signalName);
  } catch {
    // Already gone.
  }
}

/**
 * SIGKILL a container's init, which ends every process in its PID namespace (killing
 * systemd-nspawn itself would leave the container running).
 */
function killContainerInit(nspawnPid: number): void {
  if (!isNspawn(nspawnPid)) return;
  for (const child of childrenOf(nspawnPid)) signal(child, 'SIGKILL');
}

/** SIGKILL a container and its systemd-nspawn at once, for when nothing can be awaited. */
function killContainer(nspawnPid: number): void {
  if (!isNspawn(nspawnPid)) return;
  killContainerInit(nspawnPid);
  signal(nspawnPid, 'SIGKILL');
}

function cleanUpAfterDeadOwner(dead: OwnerRecord): void {
  const owner = dead as AddressOwner;
  if (owner.nspawnPid !== undefined) killContainer(owner.nspawnPid);
  if (typeof owner.workDir === 'string') removeTree(owner.workDir);
  if (Array.isArray(owner.cgroups)) removeHostCgroups(owner.cgroups);
}

/**
 * Cleans up after test runs that died without stopping their fleet (SIGKILL, OOM): kills their
 * containers, removes their work directories and frees their addresses. startFleet does this
 * first; CI may call it before the tests too.
 */
export function reapAbandonedFleets(): void {
  let entries: string[];
  try {
    entries = readdirSync(claimsRoot());
  } catch {
    return;
  }
  for (const entry of entries) {
    if (!/^address-\d+$/.test(entry)) continue;
    const claim = join(claimsRoot(), entry);
    const owner = readOwner(claim);
    if (owner === undefined || isAlive(owner.pid)) continue;
    if (tryClaim(claim, { pid: process.pid }, cleanUpAfterDeadOwner)) release(claim);
  }
}

function claimAddress(workDir: string): { address: string; claim: string } {
  for (let n = 1; n <= 254; n++) {
    const claim = join(claimsRoot(), `address-${n}`);
    if (tryClaim(claim, { pid: process.pid, workDir } satisfies AddressOwner, cleanUpAfterDeadOwner)) {
      return { address: `${ADDRESS_PREFIX}${n}`, claim };
    }
  }
  throw new Error(`no free test fleet address left in ${ADDRESS_PREFIX}1-254 (claims in ${claimsRoot()})`);
}

// ---------------------------------------------------------------------------------------------

/**
 * The fleets this process has started and not stopped. Kept on globalThis, not in the module:
 * vitest loads this module afresh for every test file in the same worker process, and the
 * process needs one set of exit hooks, not one per file.
 */
interface LiveFleets {
  readonly fleets: Set<{ tearDownNow(): void }>;
}
const LIVE_FLEETS = Symbol.for('upkeep.testbed.liveFleets');

function liveFleets(): Set<{ tearDownNow(): void }> {
  const global = globalThis as { [LIVE_FLEETS]?: LiveFleets };
  if (global[LIVE_FLEETS] === undefined) {
    const fleets = new Set<{ tearDownNow(): void }>();
    global[LIVE_FLEETS] = { fleets };
    // Last resort when the test process ends without stop(): kill every container, remove every trace.
    const tearDownAllNow = (): void => {
      for (const fleet of fleets) fleet.tearDownNow();
    };
    process.on('exit', tearDownAllNow);
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(signal, () => {
        tearDownAllNow();
        // Keep the signal's usual effect unless someone else handles it.
        if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
      });
    }
  }
  return global[LIVE_FLEETS].fleets;
}

/** Whether exited settles within timeoutMs; the timer does not keep the test process alive. */
function exitsWithin(exited: Promise<void>, timeoutMs: number): Promise<boolean> {
  return Promise.race([exited.then(() => true), sleep(timeoutMs, false, { ref: false })]);
}

interface HostSetup {
  readonly image: string;
  /** Boot with the unified cgroup hierarchy (the image's systemd needs it). */
  readonly unifiedCgroups: boolean;
  readonly sshOptions: readonly string[];
  readonly bootTimeoutMs: number;
  readonly logFile: string;
  readonly claim: string;
  readonly workDir: string;
}

class NspawnHost implements TestHost {
  readonly port = 22 as const;
  #nspawn: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #bootState: 'running' | 'degraded' | undefined;
  #reboots = 0;

  constructor(
    readonly name: string,
    readonly address: string,
    readonly hostKey: string,
    readonly upperDir: string,
    private readonly setup: HostSetup,
  ) {}

  get bootState(): 'running' | 'degraded' {
    if (this.#bootState === undefined) throw new Error(`test host ${this.name} has not booted yet`);
    return this.#bootState;
  }

  get consoleLogFile(): string {
    return this.setup.logFile;
  }

  get running(): boolean {
    return this.#nspawn !== undefined;
  }

  get reboots(): number {
    return this.#reboots;
  }

  ssh(command: string, options: SshOptions = {}): Promise<CommandResult> {
    return runCommand('ssh', [...this.setup.sshOptions, '--', `root@${this.address}`, command], {
      timeoutMs: options.timeoutMs ?? 120_000,
      ...(options.input === undefined ? {} : { input: options.input }),
    });
  }

  async start(): Promise<void> {
    if (this.#nspawn) throw new Error(`test host ${this.name} is already running`);
    const machine = `upkeep-${this.address.replaceAll('.', '-')}`;
    const cgroups = createHostCgroups(machine);
    const log = openSync(this.setup.logFile, 'a');
    const nspawn = spawn(
      '/bin/sh',
      [
        '-c',
        // Enter the host's own cgroups, then become systemd-nspawn (same pid, so it can be signalled).
        "IFS='\n'; for dir in $UPKEEP_TESTBED_CGROUPS; do echo $$ > \"$dir/cgroup.procs\" || exit 125; done; exec systemd-nspawn \"$@\"",
        'systemd-nspawn',
        '-q',
        `--directory=${this.setup.image}`,
        `--overlay=${this.setup.image}:${this.upperDir}:/`,
        '--boot',
        // No systemd on the machine running the tests: nothing to register with, no unit to create.
        '--register=no',
        '--keep-unit',
        `--machine=${machine}`,
        `--hostname=${this.name}`,
        // The console goes to the log file; nothing reads from it.
        '--console=read-only',
      ],
      {
        stdio: ['ignore', log, log],
        env: { ...process.env, UPKEEP_TESTBED_CGROUPS: cgroups.join('\n'), ...(this.setup.unifiedCgroups ? { SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '1' } : {}) },
      },
    );
    closeSync(log);
    this.#nspawn = nspawn;
    this.#exited = new Promise((resolve) =>
      nspawn.once('exit', (code) => {
        removeHostCgroups(cgroups);
        resolve();
        // The container asked to reboot: boot it again, as systemd-nspawn@.service does
        // (RestartForceExitStatus=133), so `systemctl reboot` on a test host behaves as on a server.
        if (code === REBOOT_EXIT && this.#nspawn === nspawn) {
          this.#nspawn = undefined;
          this.#reboots += 1;
          this.start().catch((error: unknown) => console.warn(`test fleet: ${this.name} did not come back from a reboot: ${(error as Error).message}`));
        }
      }),
    );
    void this.#exited.then(() => {
      if (this.#nspawn === nspawn) this.#nspawn = undefined;
    });
    writeOwner(this.setup.claim, { pid: process.pid, workDir: this.setup.workDir, nspawnPid: nspawn.pid, cgroups } satisfies AddressOwner);
    try {
      await this.waitForBoot(nspawn);
    } catch (error) {
      await this.kill();
      throw error;
    }
  }

  private async waitForBoot(nspawn: ChildProcess): Promise<void> {
    const deadline = Date.now() + this.setup.bootTimeoutMs;
    let last: CommandResult | undefined;
    while (Date.now() < deadline) {
      if (nspawn.exitCode !== null || nspawn.signalCode !== null) {
        throw new Error(`test host ${this.name} (${this.address}) stopped while booting (systemd-nspawn exit ${nspawn.exitCode ?? nspawn.signalCode}).\n${this.consoleTail()}`);
      }
      // --wait blocks until boot has finished, so one answer is final.
      last = await this.ssh('systemctl is-system-running --wait', { timeoutMs: Math.max(1_000, deadline - Date.now()) });
      const state = last.stdout.trim();
      if (state === 'running' || state === 'degraded') {
        this.#bootState = state;
        if (state === 'degraded') {
          const failed = await this.ssh('systemctl --failed --no-legend --plain');
          console.warn(`test fleet: ${this.name} booted degraded; failed units:\n${failed.stdout.trim()}`);
        }
        return;
      }
      if (last.exitCode !== 255) {
        throw new Error(`test host ${this.name} (${this.address}) booted into state "${state}":\n${last.stderr.trim()}\n${this.consoleTail()}`);
      }
      // 255: sshd is not listening yet.
      await sleep(250);
    }
    throw new Error(
      `test host ${this.name} (${this.address}) did not come up within ${this.setup.bootTimeoutMs} ms; last ssh: ${last?.stderr.trim() ?? '(none)'}\n${this.consoleTail()}`,
    );
  }

  private consoleTail(): string {
    try {
      return `console (${this.setup.logFile}), last lines:\n${readFileSync(this.setup.logFile, 'utf8').trim().split('\n').slice(-20).join('\n')}`;
    } catch {
      return '(no console output)';
    }
  }

  async stop(): Promise<void> {
    const nspawn = this.#nspawn;
    if (!nspawn) return;
    // systemd-nspawn turns SIGTERM into a clean shutdown of the container's systemd.
    nspawn.kill('SIGTERM');
    const stopped = await exitsWithin(this.#exited, STOP_TIMEOUT_MS);
    if (!stopped) await this.kill();
  }

  async kill(): Promise<void> {
    const nspawn = this.#nspawn;
    if (!nspawn?.pid) return;
    killContainerInit(nspawn.pid);
    // systemd-nspawn exits once the init has ended, i.e. once every process of the container has
    // ended and the overlay is released, so the same upper directory can boot again.
    const exited = await exitsWithin(this.#exited, KILL_TIMEOUT_MS);
    if (!exited) {
      this.killNow();
      await this.#exited;
    }
  }

  /** Synchronous kill for process exit, when nothing can be awaited. */
  killNow(): void {
    const nspawn = this.#nspawn;
    if (!nspawn?.pid) return;
    killContainerInit(nspawn.pid);
    // Through the child handle, not the pid: it is safe even before the wrapper shell became systemd-nspawn.
    nspawn.kill('SIGKILL');
  }
}

class NspawnFleet implements TestFleet {
  #stopped = false;

  constructor(
    readonly hosts: readonly NspawnHost[],
    readonly knownHostsFile: string,
    readonly identityFile: string,
    readonly workDir: string,
    readonly sshOptions: readonly string[],
    private readonly claims: readonly string[],
  ) {}

  host(name: string): TestHost {
    const host = this.hosts.find((h) => h.name === name);
    if (!host) throw new Error(`no test host "${name}" (hosts: ${this.hosts.map((h) => h.name).join(', ')})`);
    return host;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    try {
      await Promise.all(this.hosts.map((host) => host.stop()));
    } finally {
      this.tearDownNow();
    }
  }

  tearDownNow(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const host of this.hosts) host.killNow();
    removeTree(this.workDir);
    for (const claim of this.claims) release(claim);
    liveFleets().delete(this);
  }
}

async function generateKey(file: string, comment: string): Promise<string> {
  await runChecked('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  // "ssh-ed25519 AAAA... comment" -> the key without its comment, as known_hosts pins it.
  return readFileSync(`${file}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
}

/** Writes what makes a host itself into its upper directory: identity, keys, address. */
async function prepareUpper(upper: string, name: string, address: string, operatorKey: string): Promise<string> {
  mkdirSync(join(upper, 'etc/ssh/sshd_config.d'), { recursive: true, mode: 0o755 });
  mkdirSync(join(upper, 'root'), { mode: 0o700 });
  mkdirSync(join(upper, 'root/.ssh'), { mode: 0o700 });
  const hostKey = await generateKey(join(upper, 'etc/ssh/ssh_host_ed25519_key'), `root@${name}`);
  writeFileSync(
    join(upper, 'etc/ssh/sshd_config.d/upkeep-testbed.conf'),
    // The containers share the machine's network: each host listens on its own loopback address only.
    `ListenAddress ${address}\nHostKey /etc/ssh/ssh_host_ed25519_key\n`,
  );
  writeFileSync(join(upper, 'root/.ssh/authorized_keys'), `${operatorKey}\n`, { mode: 0o600 });
  writeFileSync(join(upper, 'etc/hostname'), `${name}\n`);
  writeFileSync(join(upper, 'etc/machine-id'), `${randomBytes(16).toString('hex')}\n`, { mode: 0o444 });
  chmodSync(join(upper, 'root'), 0o700);
  return hostKey;
}

/**
 * Boots one container per name and waits until every host answers over ssh with its pinned key
 * and systemd reports the boot finished. Stop the fleet in afterAll.
 */
export async function startFleet(names: readonly string[], options: StartFleetOptions = {}): Promise<TestFleet> {
  const support = fleetSupport();
  if (!support.ok) throw new Error(`the test fleet cannot run here: ${support.reason}`);
  if (names.length === 0) throw new Error('startFleet needs at least one host name');
  const invalid = names.filter((name) => !HOST_NAME.test(name));
  if (invalid.length > 0) throw new Error(`invalid test host names (lowercase letters, digits, dashes): ${invalid.join(', ')}`);
  const duplicates = names.filter((name, i) => names.indexOf(name) !== i);
  if (duplicates.length > 0) throw new Error(`duplicate test host names: ${duplicates.join(', ')}`);

  reapAbandonedFleets();
  const image = await ensureBaseImage(options.extraPackages ?? [], options.suite ?? BASE_IMAGE_SUITE);
  const unifiedCgroups = (imageSystemdVersion(image) ?? 0) >= FIRST_SYSTEMD_WITHOUT_CGROUP_V1;
  const workDir = mkdtempSync(join(tmpdir(), 'upkeep-fleet-'));
  const claims: string[] = [];
  try {
    mkdirSync(join(workDir, 'operator'), { mode: 0o700 });
    const identityFile = join(workDir, 'operator/id_ed25519');
    await generateKey(identityFile, 'operator@upkeep-testbed');
    const operatorKey = readFileSync(`${identityFile}.pub`, 'utf8').trim();
    const knownHostsFile = join(workDir, 'operator/known_hosts');
    const sshOptions = [
      '-F', '/dev/null',
      '-i', identityFile,
      '-o', 'IdentitiesOnly=yes',
      '-o', `UserKnownHostsFile=${knownHostsFile}`,
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', 'BatchMode=yes',
      '-o', 'ConnectTimeout=5',
      '-o', 'LogLevel=ERROR',
    ];
    const hosts: NspawnHost[] = [];
    for (const name of names) {
      const { address, claim } = claimAddress(workDir);
      claims.push(claim);
      const hostDir = join(workDir, 'hosts', name);
      const upper = join(hostDir, 'upper');
      mkdirSync(upper, { recursive: true });
      const hostKey = await prepareUpper(upper, name, address, operatorKey);
      hosts.push(new NspawnHost(name, address, hostKey, upper, {
        image,
        unifiedCgroups,
        sshOptions,
        bootTimeoutMs: options.bootTimeoutMs ?? 120_000,
        logFile: join(hostDir, 'console.log'),
        claim,
        workDir,
      }));
    }
    writeFileSync(knownHostsFile, hosts.map((host) => `${host.address} ${host.hostKey}\n`).join(''));
    const fleet = new NspawnFleet(hosts, knownHostsFile, identityFile, workDir, sshOptions, claims);
    liveFleets().add(fleet);
    const booted = await Promise.allSettled(hosts.map((host) => host.start()));
    const failures = booted.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failures.length > 0) {
      await fleet.stop();
      throw new Error(failures.map((failure) => String(failure.reason instanceof Error ? failure.reason.message : failure.reason)).join('\n\n'));
    }
    return fleet;
  } catch (error) {
    removeTree(workDir);
    for (const claim of claims) release(claim);
    throw error;
  }
}
