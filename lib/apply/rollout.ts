// The rollout: a reviewed plan reaches the fleet group by group in plan order (staging first), each
// group in batches of its batchSize. After every wave its changed hosts must confirm over a new
// connection and pass their health gate; a wave that fails beyond its group's failure budget goes
// back to its previous generation and nothing after it starts, and a change that failed on any
// staging host goes no further than staging. Every action is journalled.
//
// A change is done when its host passed its gates and its group's soak: then the host is told
// (settle). A host a cut-off run left on the new generation unsettled (a CI job timed out during
// the soak, the applier was killed) is gated again, and its group soaks what is left of its soak,
// counted from the switch, before the next group starts.
//
// Round trips: every host is read once up front (state, stale-plan check, no-op detection). A host
// that already matches the plan is not contacted again, so a no-op rollout costs one round trip per
// host (plus the fleet lock's lease on the lock host).

import type { PlanDocument, PlannedGroup, PlannedHost } from '../plan/plan-format.ts';
import { exchangeBackupKeys, type BackupLink } from './backup-keys.ts';
import { pinPeers, type PeerPin } from './peer-pins.ts';
import { UNIT_DIR, UNIT_PREFIX } from '../compile/desired-state.ts';
import { apply, breakLock, confirm, healthBefore, healthGate, HostAgentError, readState, rollback, settle as settleGeneration, type ApplyResult, type CheckResult, type HealthBefore, type HostBundle, type HostState } from '../hosts/host-agent.ts';
import { judgeHealth, type RemoteCheckRun } from './health-judgement.ts';
import type { RemoteCheck } from './remote-checks.ts';
import { FLEET, type Journal, type StepContext } from './journal.ts';
import type { FleetLock } from './fleet-lock.ts';
import { formatDuration, type Progress } from './progress.ts';
import { firstLine, pMap, type Transport } from '../hosts/transport.ts';

/** systemState of an image root reached through a local transport. */
const OFFLINE = 'offline';

/** Check services the health gate starts: unit files upkeep installs as upkeep-check-*.service. */
export const CHECK_UNIT = new RegExp(`^${UNIT_PREFIX}check-[A-Za-z0-9_.@-]+\\.service$`);

export type HostStatus = 'unchanged' | 'changed' | 'failed' | 'rolled-back' | 'not-started';

export interface HostOutcome {
  readonly host: string;
  readonly group: string;
  /** 0 when the host never reached its wave. */
  readonly wave: number;
  readonly status: HostStatus;
  /** Generation the host is on at the end, as far as the applier knows (undefined: unknown). */
  readonly generation?: string | null;
  readonly detail?: string;
}

export type RolloutOutcome = 'ok' | 'failed' | 'rolled-back';

export interface RolloutResult {
  readonly outcome: RolloutOutcome;
  /** 0 ok, 1 failed, 3 rolled back. */
  readonly exitCode: 0 | 1 | 3;
  readonly hosts: readonly HostOutcome[];
  /** Why the rollout stopped early, if it did. */
  readonly stoppedBecause?: string;
}

export interface RolloutConnections {
  /** The host's working connection, reused for every step. */
  transport(host: string): Transport;
  /** A brand-new connection (its own ssh master), proving the host still accepts logins. */
  freshTransport(host: string): Transport;
}

export interface RolloutOptions {
  readonly plan: PlanDocument;
  /** The bundle a host's agent installs (secrets resolved). Called only for hosts that change. */
  readonly bundle: (host: PlannedHost) => HostBundle;
  readonly connections: RolloutConnections;
  readonly journal: Journal;
  readonly progress: Progress;
  /** The fleet lock, taken before anything else and released at the end. */
  readonly fleetLock?: FleetLock;
  /** Take over a held fleet lock and end sessions holding host locks. @default false */
  readonly breakLock?: boolean;
  /** Hosts contacted at once. @default 8 */
  readonly parallel?: number;
  /** Skip the soak time between groups (journalled). @default false */
  readonly skipSoak?: boolean;
  /** Seconds a changed host waits for confirmation before rolling itself back. @default 60 */
  readonly confirmTimeoutSeconds?: number;
  /** Recorded with the host locks. @default "upkeep" */
  readonly holder?: string;
  /** Renew the fleet lock this often. @default 60_000 */
  readonly lockRenewMs?: number;
  /** @default setTimeout-based sleep */
  readonly sleep?: (ms: number) => Promise<void>;
  /** sftp backup clients and their repository hosts: keys exchanged at the end (lib/apply/backup-keys.ts). */
  readonly backupLinks?: readonly BackupLink[];
  /** Hosts that reach provisioned peers: their addresses and keys pinned before the first wave (lib/apply/peer-pins.ts). */
  readonly peerPins?: readonly PeerPin[];
  /** Checks that watch a host from another host (lib/apply/remote-checks.ts): part of the subject's health gate. */
  readonly remoteChecks?: readonly RemoteCheck[];
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Check units of a planned host: its upkeep-check-*.service unit files. */
export function checkUnitsOf(host: PlannedHost): string[] {
  return host.files
    .filter((f) => f.path.startsWith(`${UNIT_DIR}/`) && CHECK_UNIT.test(f.path.slice(UNIT_DIR.length + 1)))
    .map((f) => f.path.slice(UNIT_DIR.length + 1))
    .sort();
}

/** Splits a group into its waves. */
export function wavesOf(group: PlannedGroup): string[][] {
  const size = Math.max(1, group.batchSize);
  const waves: string[][] = [];
  for (let i = 0; i < group.hosts.length; i += size) waves.push(group.hosts.slice(i, i + size));
  return waves;
}

/** pMap that never rejects: each item's error is returned in its place. */
async function settle<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<(R | { error: unknown })[]> {
  if (items.length === 0) return [];
  return pMap(items, limit, async (item) => {
    try {
      return await fn(item);
    } catch (error) {
      return { error };
    }
  });
}

function isError(value: unknown): value is { error: unknown } {
  return typeof value === 'object' && value !== null && 'error' in value && Object.keys(value).length === 1;
}

function short(generation: string | null | undefined): string {
  return generation ? generation.slice(0, 12) : 'nothing';
}

function describeChange(result: ApplyResult): string {
  const parts = [
    result.filesWritten.length && `${result.filesWritten.length} file(s) written`,
    result.filesRemoved.length && `${result.filesRemoved.length} removed`,
    result.unitsEnabled.length && `${result.unitsEnabled.length} unit(s) enabled`,
    result.unitsDisabled.length && `${result.unitsDisabled.length} disabled`,
    result.unitsRestarted.length && `${result.unitsRestarted.length} restarted`,
    result.packagesInstalled.length && `${result.packagesInstalled.length} package(s) installed`,
  ].filter(Boolean);
  return parts.length ? parts.join(', ') : 'switched generation';
}

/** Message for a plan computed against other generations than the hosts are on. */
export function stalePlanMessage(stale: readonly { host: string; current: string | null; base: string | null }[]): string {
  const lines = stale.map((s) => `  - ${s.host}: on generation ${short(s.current)}, the plan was computed against ${short(s.base)}`);
  return [
    `the plan is stale: ${stale.length} host(s) are not on the generation it was computed against`,
    ...lines,
    'Nothing was changed. Re-plan against the live hosts and review again: bin/plan POLICY --live --out DIR',
  ].join('\n');
}

export async function rollout(options: RolloutOptions): Promise<RolloutResult> {
  const { plan, journal, progress, connections } = options;
  const parallel = options.parallel ?? 8;
  const sleep = options.sleep ?? defaultSleep;
  const confirmTimeoutSeconds = options.confirmTimeoutSeconds ?? 60;
  const outcomes = new Map<string, HostOutcome>();
  /** Each changed host's state just before its change, and its watchers' (runner -> last results). */
  const before = new Map<string, { local?: HealthBefore; remote: Map<string, readonly CheckResult[]> }>();
  const watchersOf = (host: string) => {
    const byRunner = new Map<string, string[]>();
    for (const c of options.remoteChecks ?? []) if (c.subject === host && states.get(c.runner)?.systemState !== OFFLINE) byRunner.set(c.runner, [...(byRunner.get(c.runner) ?? []), c.unit]);
    return byRunner;
  };
  /** Seconds each host changed by an earlier, cut-off run had been on its new generation when read. */
  const earlierSwitch = new Map<string, number>();
  let readAt = Date.now();
  const groupOf = new Map<string, string>();
  for (const group of plan.groups) for (const host of group.hosts) groupOf.set(host, group.name);
  const hostNames = plan.groups.flatMap((g) => g.hosts);
  for (const host of hostNames) outcomes.set(host, { host, group: groupOf.get(host) ?? '', wave: 0, status: 'not-started' });
  const set = (outcome: HostOutcome) => outcomes.set(outcome.host, outcome);
  const finish = (stoppedBecause?: string): RolloutResult => {
    const hosts = hostNames.map((h) => outcomes.get(h) as HostOutcome);
    const rolledBack = hosts.some((h) => h.status === 'rolled-back');
    const failed = stoppedBecause !== undefined || hosts.some((h) => h.status === 'failed' || h.status === 'not-started');
    const outcome: RolloutOutcome = rolledBack ? 'rolled-back' : failed ? 'failed' : 'ok';
    const exitCode = rolledBack ? 3 : failed ? 1 : 0;
    journal.finish(outcome, exitCode);
    return { outcome, exitCode, hosts, ...(stoppedBecause === undefined ? {} : { stoppedBecause }) };
  };

  // 1. The fleet lock, so no other rollout interleaves with this one, and 2. every host's state:
  // reachability, stale plan, which hosts already match. Reading changes nothing (the agent only
  // finishes or undoes a switch that was interrupted, under the host's own lock), so both go out
  // at once and a no-op rollout waits for a single round trip per host; no switch starts before
  // the lock is ours.
  const states = new Map<string, HostState>();
  const lock = options.fleetLock;
  let lockHeld = false;
  let lockLost: string | undefined;
  let renewal: NodeJS.Timeout | undefined;
  const lockTaken: Promise<{ error?: unknown }> = lock
    ? journal
        .step({ host: lock.host, step: 'fleet-lock' }, () => lock.acquire(options.breakLock ?? false), (d) =>
          d ? { result: 'ok', detail: `broke the lock of ${d.holder} (run ${d.runId}, held ${d.ageSeconds}s)` } : { result: 'ok' },
        )
        .then(
          (displaced) => {
            lockHeld = true;
            if (displaced) progress(`fleet lock: broke the lock of ${displaced.holder} (run ${displaced.runId}, held ${displaced.ageSeconds}s)`, 'warn');
            return {};
          },
          (error: unknown) => ({ error }),
        )
    : Promise.resolve({});

  try {
    progress(`reading ${hostNames.length} host(s)`, 'heading');
    const unreachable = new Map<string, string>();
    const [taken, read] = await Promise.all([
      lockTaken,
      settle(hostNames, parallel, (host) =>
        journal.step({ host, step: 'read-state' }, () => readState(connections.transport(host)), (s) => ({ result: 'ok', detail: `generation ${short(s.generation)}` })),
      ),
    ]);
    if (taken.error !== undefined) {
      progress(`fleet lock: ${firstLine(taken.error)}`, 'fail');
      return finish((taken.error as Error).message);
    }
    if (lock) {
      renewal = setInterval(() => {
        lock.renew().catch((error: unknown) => {
          lockLost ??= (error as Error).message;
        });
      }, options.lockRenewMs ?? 60_000);
      renewal.unref();
    }
    read.forEach((r, i) => {
      const host = hostNames[i] as string;
      if (isError(r)) {
        unreachable.set(host, firstLine(r.error));
        progress(`  ${host}  unreachable: ${firstLine(r.error)}`, 'fail');
      } else states.set(host, r);
    });
    readAt = Date.now();
    const stale = [...states.values()]
      .map((s) => ({ host: s.host, current: s.generation, base: plan.hosts[s.host]?.baseGeneration ?? null, target: plan.hosts[s.host]?.generation }))
      .filter((s) => s.current !== s.base && s.current !== s.target);
    if (stale.length > 0) {
      const message = stalePlanMessage(stale);
      for (const s of stale) journal.record({ host: s.host, step: 'stale-plan' }, 'failed', new Date(), `on ${short(s.current)}, plan base ${short(s.base)}`);
      progress(message, 'fail');
      for (const [host, why] of unreachable) set({ host, group: groupOf.get(host) ?? '', wave: 0, status: 'failed', detail: why });
      return finish(message);
    }

    // The addresses and keys of provisioned peers, where hosts reach them, before any host switches
    // (peer-pins.ts): a problem is reported at the end, and the hosts it concerns fail their gate
    // on their own if they need the peer.
    const pinProblems = await pinPeers({ pins: options.peerPins ?? [], reachable: new Set(states.keys()), states, transport: connections.transport, journal, progress, parallel });

    // 3. Waves.
    const totalWaves = plan.groups.reduce((n, g) => n + wavesOf(g).length, 0);
    let waveNumber = 0;
    for (const [groupIndex, group] of plan.groups.entries()) {
      let failuresInGroup = 0;
      const changedInGroup: string[] = [];
      // Whether the group's changes are judged once more after a soak before they are done.
      const soaks = groupIndex + 1 < plan.groups.length && group.soakSeconds > 0 && !options.skipSoak;
      for (const wave of wavesOf(group)) {
        waveNumber += 1;
        if (lockLost) return finish(lockLost);
        const context = (host: string, step: string): StepContext => ({ host, step, wave: waveNumber, group: group.name });
        progress(`wave ${waveNumber}/${totalWaves} · ${group.name}${group.staging ? ' (staging)' : ''} · ${wave.join(', ')}`, 'heading');

        const applied = await settle(wave, Math.min(parallel, wave.length), async (host): Promise<HostOutcome> => {
          const planned = plan.hosts[host] as PlannedHost;
          const why = unreachable.get(host);
          if (why !== undefined) {
            journal.record(context(host, 'apply'), 'failed', new Date(), `unreachable: ${why}`);
            progress(`  ${host}  failed: unreachable`, 'fail');
            return { host, group: group.name, wave: waveNumber, status: 'failed', detail: `unreachable: ${why}` };
          }
          const state = states.get(host) as HostState;
          const pendingConfirm = state.unconfirmedGeneration === planned.generation;
          const unsettled = state.unsettled?.generation === planned.generation ? state.unsettled : undefined;
          if (unsettled) earlierSwitch.set(host, unsettled.ageSeconds);
          if (state.generation === planned.generation && state.drift.length === 0 && !pendingConfirm) {
            if (unsettled) {
              // Switched by a run that ended before its gates (or its group's soak) passed.
              const detail = `on it for ${formatDuration(unsettled.ageSeconds * 1000)}, switched by an earlier run that ended before its gates passed: gated now`;
              journal.record(context(host, 'apply'), 'unchanged', new Date(), detail);
              progress(`  ${host}  ${detail}`, 'warn');
              return { host, group: group.name, wave: waveNumber, status: 'changed', generation: planned.generation, detail };
            }
            journal.record(context(host, 'apply'), 'unchanged', new Date());
            progress(`  ${host}  unchanged`, 'ok');
            return { host, group: group.name, wave: waveNumber, status: 'unchanged', generation: planned.generation };
          }
          return applyHost(planned, state, context);
        });

        const results: HostOutcome[] = applied.map((r, i) =>
          isError(r) ? { host: wave[i] as string, group: group.name, wave: waveNumber, status: 'failed', detail: firstLine(r.error) } : r,
        );

        // Health gate on the hosts this wave changed.
        const changed = results.filter((r) => r.status === 'changed').map((r) => r.host);
        const gateFailures = await gate(changed, waveNumber, group.name);
        const waveResults = results.map((r) => (gateFailures.has(r.host) ? { ...r, status: 'failed' as const, detail: gateFailures.get(r.host) } : r));
        const failures = waveResults.filter((r) => r.status === 'failed' || r.status === 'rolled-back');
        failuresInGroup += failures.length;
        const passed = waveResults.filter((r) => r.status === 'changed').map((r) => r.host);
        changedInGroup.push(...passed);

        if (failuresInGroup > group.failureBudget) {
          // Beyond the budget: the whole wave goes back, and nothing after it starts.
          const toRollBack = waveResults.filter((r) => r.status === 'changed' || gateFailures.has(r.host)).map((r) => r.host);
          for (const r of waveResults) set(r);
          await rollBack(toRollBack, waveNumber, group.name, 'the wave exceeded its failure budget');
          const stopped = `${group.name}: ${failuresInGroup} host(s) failed (failure budget ${group.failureBudget}); the rollout stops here`;
          journal.record({ host: FLEET, step: 'stop', wave: waveNumber, group: group.name }, 'failed', new Date(), stopped);
          progress(stopped, 'fail');
          return finish(stopped);
        }
        // Within the budget: only the hosts whose gate failed go back.
        for (const r of waveResults) set(r);
        await rollBack([...gateFailures.keys()], waveNumber, group.name, 'its health gate failed');
        // Done, unless the group's soak and its gate are still to come.
        if (!soaks) await settleHosts(passed.filter((h) => !gateFailures.has(h)), waveNumber, group.name);
      }

      const next = plan.groups[groupIndex + 1];
      if (next === undefined) continue;
      // A change that failed on staging is not promoted, whatever the group's failure budget lets
      // the rest of staging go on with (as upkeep update never promotes it).
      if (group.staging && failuresInGroup > 0) {
        const stopped = `${group.name}: ${failuresInGroup} staging host(s) failed; a change that failed on staging is not promoted: stopped before ${next.name}`;
        journal.record({ host: FLEET, step: 'stop', wave: waveNumber, group: group.name }, 'failed', new Date(), stopped);
        progress(stopped, 'fail');
        return finish(stopped);
      }

      // 4. Soak before the next group, then look again at what this group changed.
      const soakContext: StepContext = { host: FLEET, step: 'soak', group: group.name };
      if (changedInGroup.length === 0 || group.soakSeconds <= 0) {
        journal.record(soakContext, 'skipped', new Date(), changedInGroup.length === 0 ? 'nothing changed in the group' : 'no soak time');
        continue;
      }
      if (options.skipSoak) {
        journal.record(soakContext, 'skipped', new Date(), `--skip-soak: ${group.soakSeconds}s soak of ${group.name} skipped`);
        progress(`soak of ${group.name} (${group.soakSeconds}s) skipped: --skip-soak`, 'warn');
      } else {
        const remaining = soakLeft(group.soakSeconds, changedInGroup);
        progress(`soak: watching ${group.name} for ${remaining}s${remaining < group.soakSeconds ? ` (what is left of its ${group.soakSeconds}s soak: switched by an earlier run)` : ''} before ${next.name}`, 'heading');
        await journal.step(soakContext, () => sleep(remaining * 1000));
        if (lockLost) return finish(lockLost);
        const soakFailures = await gate(changedInGroup, waveNumber, group.name);
        if (soakFailures.size > 0) {
          for (const [host, detail] of soakFailures) set({ ...(outcomes.get(host) as HostOutcome), status: 'failed', detail });
          await rollBack(changedInGroup, waveNumber, group.name, 'a health gate failed after the soak');
          const stopped = `${group.name}: ${soakFailures.size} host(s) failed their health gate after the soak; stopped before ${next.name}`;
          progress(stopped, 'fail');
          return finish(stopped);
        }
        await settleHosts(changedInGroup, waveNumber, group.name);
      }
    }
    // 5. Backup clients' keys into their repository hosts, once every group is through (backup-keys.ts).
    const hostsWith = (...statuses: HostStatus[]) => new Set([...outcomes.values()].filter((o) => statuses.includes(o.status)).map((o) => o.host));
    const keyProblems = await exchangeBackupKeys({ links: options.backupLinks ?? [], applied: hostsWith('changed', 'unchanged'), changed: hostsWith('changed'), states, transport: connections.transport, journal, progress, parallel });
    const problems = [
      ...(pinProblems.size > 0 ? [`provisioned peers not pinned: ${[...pinProblems].map(([host, why]) => `${host}: ${why}`).join('; ')}`] : []),
      ...(keyProblems.size > 0 ? [`backup keys not in place: ${[...keyProblems].map(([host, why]) => `${host}: ${why}`).join('; ')}`] : []),
    ];
    return finish(problems.length > 0 ? problems.join('; ') : undefined);
  } finally {
    if (renewal) clearInterval(renewal);
    if (lock && lockHeld) await journal.step({ host: lock.host, step: 'fleet-unlock' }, () => lock.release()).catch(() => undefined);
  }

  /** Applies one host, confirms it over a new connection, and reports. */
  async function applyHost(planned: PlannedHost, state: HostState, context: (host: string, step: string) => StepContext): Promise<HostOutcome> {
    const host = planned.name;
    const base = { host, group: planned.group, wave: context(host, '').wave ?? 0 };
    const transport = connections.transport(host);
    const bundle = options.bundle(planned);
    if (state.systemState !== OFFLINE) await readBefore(host);
    const applyOnce = () =>
      apply(transport, bundle, {
        planId: plan.plan_id,
        generation: planned.generation,
        baseGeneration: planned.baseGeneration,
        confirmTimeoutSeconds,
        holder: options.holder ?? 'upkeep',
      });
    let result: ApplyResult;
    try {
      result = await journal.step(context(host, 'apply'), async () => {
        try {
          return await applyOnce();
        } catch (error) {
          if (!(error instanceof HostAgentError && error.kind === 'locked' && options.breakLock)) throw error;
          const holder = await breakLock(transport);
          progress(`  ${host}  broke the host lock of ${holder ? `${holder.holder} from ${holder.from} (${holder.ageSeconds}s)` : 'a session that had ended'}`, 'warn');
          return applyOnce();
        }
      }, (r) => ({ result: r.changed ? 'changed' : 'unchanged', detail: r.changed ? `${short(r.previousGeneration)} -> ${short(r.generation)}: ${describeChange(r)}` : undefined }));
    } catch (error) {
      progress(`  ${host}  failed: ${firstLine(error)}`, 'fail');
      return { ...base, status: 'failed', generation: state.generation, detail: firstLine(error) };
    }
    if (result.recovered) progress(`  ${host}  recovered an interrupted operation: ${result.recovered}`, 'warn');
    // Switched (or repaired) now: its soak counts from now.
    if (result.changed) earlierSwitch.delete(host);

    // The host waits for us to prove it still accepts new connections; otherwise it goes back.
    if (result.rollbackUnit !== null || state.unconfirmedGeneration === planned.generation) {
      const fresh = connections.freshTransport(host);
      try {
        await journal.step(context(host, 'confirm'), () => confirm(fresh, planned.generation));
      } catch (error) {
        progress(`  ${host}  cannot confirm over a new connection (${firstLine(error)}); waiting for it to roll itself back`, 'fail');
        const back = await awaitSelfRollback(host, result.previousGeneration, context(host, 'self-rollback'));
        return { ...base, status: back ? 'rolled-back' : 'failed', generation: back ? result.previousGeneration : undefined, detail: `new connections failed after the change: ${firstLine(error)}` };
      } finally {
        await fresh.close();
      }
    }
    progress(`  ${host}  ${result.changed ? `changed: ${describeChange(result)}` : 'unchanged'}`, 'ok');
    // A switch an earlier run made but never saw through its gates is this run's to judge.
    const earlier = state.unconfirmedGeneration === planned.generation || state.unsettled?.generation === planned.generation;
    return { ...base, status: result.changed || state.generation !== planned.generation || earlier ? 'changed' : 'unchanged', generation: planned.generation };
  }

  /**
   * Seconds of `soakSeconds` still to wait for `hosts`: all of it when one changed in this run, else
   * what is left since the latest switch an earlier run made (by the hosts' own clocks).
   */
  function soakLeft(soakSeconds: number, hosts: readonly string[]): number {
    if (hosts.some((h) => !earlierSwitch.has(h))) return soakSeconds;
    const since = Math.min(...hosts.map((h) => earlierSwitch.get(h) as number)) + (Date.now() - readAt) / 1000;
    return Math.max(0, Math.ceil(soakSeconds - since));
  }

  /** Tells each host its change is done; one that cannot be told is gated again by the next run. */
  async function settleHosts(hosts: readonly string[], wave: number, group: string): Promise<void> {
    // An image root has no gates: the agent settles its changes at once.
    const live = hosts.filter((h) => states.get(h)?.systemState !== OFFLINE);
    const results = await settle(live, Math.min(parallel, Math.max(1, live.length)), (host) =>
      journal.step({ host, step: 'settle', wave, group }, () => settleGeneration(connections.transport(host), (plan.hosts[host] as PlannedHost).generation)),
    );
    results.forEach((r, i) => {
      if (isError(r)) progress(`  ${live[i]}  could not record that its change passed (${firstLine(r.error)}): the next run gates it again`, 'warn');
    });
  }

  /** Waits out the host's confirmation timeout and checks, over new connections, that it went back. */
  async function awaitSelfRollback(host: string, previous: string | null, context: StepContext): Promise<boolean> {
    const started = new Date();
    const deadline = Date.now() + (confirmTimeoutSeconds + 90) * 1000;
    await sleep(confirmTimeoutSeconds * 1000);
    while (Date.now() < deadline) {
      const probe = connections.freshTransport(host);
      try {
        const state = await readState(probe);
        if (state.generation === previous && state.unconfirmedGeneration === null) {
          journal.record(context, 'rolled-back', started, `back on ${short(previous)} by itself`);
          progress(`  ${host}  rolled itself back to ${short(previous)}`, 'warn');
          return true;
        }
      } catch {
        // Still unreachable: sshd may be restarting after the rollback.
      } finally {
        await probe.close();
      }
      await sleep(3000);
    }
    journal.record(context, 'failed', started, `not seen back on ${short(previous)}`);
    progress(`  ${host}  did not come back on ${short(previous)}`, 'fail');
    return false;
  }

  /**
   * The host's checks' last results and failed units, and those of the checks watching it from
   * other hosts, just before its change (lib/apply/health-judgement.ts). Reading them runs nothing;
   * when they cannot be read, the gate has nothing to compare with and blames every failure.
   */
  async function readBefore(host: string): Promise<void> {
    const remote = new Map<string, readonly CheckResult[]>();
    let local: HealthBefore | undefined;
    try {
      local = await healthBefore(connections.transport(host), checkUnitsOf(plan.hosts[host] as PlannedHost));
    } catch (error) {
      progress(`  ${host}  cannot read its state before the change (${firstLine(error)}): every failure after it counts`, 'warn');
    }
    for (const [runner, units] of watchersOf(host)) {
      try {
        remote.set(runner, (await healthBefore(connections.transport(runner), units)).checks);
      } catch (error) {
        progress(`  ${host}  cannot read the checks ${runner} runs on it (${firstLine(error)})`, 'warn');
      }
    }
    before.set(host, { ...(local && { local }), remote });
  }

  /**
   * The checks other hosts run on `host`, run now. Checks that cannot run (their runner cannot be
   * reached) fail the gate as a check that could not run does: nothing saw the change work. Only a
   * runner that could not be read just before the change either is reported instead.
   */
  async function runRemoteChecks(host: string, blamed: string[], reported: string[]): Promise<RemoteCheckRun[]> {
    const runs: RemoteCheckRun[] = [];
    const earlier = before.get(host);
    for (const [runner, units] of watchersOf(host)) {
      try {
        const report = await healthGate(connections.transport(runner), units);
        const last = earlier?.remote.get(runner) ?? [];
        for (const after of report.checks) {
          const previous = last.find((c) => c.unit === after.unit);
          runs.push({ runner, after, ...(previous && { before: previous }) });
        }
      } catch (error) {
        const why = `the checks ${runner} runs on this host could not run: ${firstLine(error)}`;
        if (earlier !== undefined && !earlier.remote.has(runner)) reported.push(`${why}, nor could they be read before the change`);
        else blamed.push(why);
      }
    }
    return runs;
  }

  /** Health gate on `hosts`; returns the failures with one line each. */
  async function gate(candidates: readonly string[], wave: number, group: string): Promise<Map<string, string>> {
    const failures = new Map<string, string>();
    // An image root (local transport) runs nothing: there is no system to check yet.
    const hosts = candidates.filter((host) => states.get(host)?.systemState !== OFFLINE);
    for (const host of candidates.filter((h) => !hosts.includes(h))) journal.record({ host, step: 'health-gate', wave, group }, 'skipped', new Date(), 'image root: nothing runs there');
    const verdicts = await settle(hosts, Math.min(parallel, Math.max(1, hosts.length)), (host) =>
      journal.step(
        { host, step: 'health-gate', wave, group },
        async () => {
          const report = await healthGate(connections.transport(host), checkUnitsOf(plan.hosts[host] as PlannedHost));
          const cannotRun: string[] = [];
          const unread: string[] = [];
          const remote = await runRemoteChecks(host, cannotRun, unread);
          const verdict = judgeHealth(report, before.get(host)?.local, remote);
          return { blamed: [...verdict.blamed, ...cannotRun], reported: [...verdict.reported, ...unread] };
        },
        (v) => (v.blamed.length === 0 ? { result: 'ok', ...(v.reported.length > 0 && { detail: `reported, not blamed on the change: ${v.reported.join('; ')}` }) } : { result: 'failed', detail: v.blamed.join('; ') }),
      ),
    );
    verdicts.forEach((v, i) => {
      const host = hosts[i] as string;
      const problem = isError(v) ? firstLine(v.error) : v.blamed.length === 0 ? undefined : v.blamed.join('; ');
      if (problem !== undefined) failures.set(host, `health gate: ${problem}`);
      progress(`  ${host}  health gate ${problem === undefined ? 'ok' : `FAILED: ${problem}`}`, problem === undefined ? 'ok' : 'fail');
      if (!isError(v)) for (const line of v.reported) progress(`  ${host}    not blamed on the change: ${line}`, 'warn');
    });
    return failures;
  }

  /** Returns `hosts` to their previous generation. */
  async function rollBack(hosts: readonly string[], wave: number, group: string, why: string): Promise<void> {
    if (hosts.length === 0) return;
    progress(`rolling back ${hosts.join(', ')}: ${why}`, 'warn');
    const results = await settle(hosts, Math.min(parallel, hosts.length), (host) =>
      journal.step({ host, step: 'rollback', wave, group }, () => rollback(connections.transport(host)), (r) => ({ result: 'rolled-back', detail: `${short(r.from)} -> ${short(r.to)}` })),
    );
    results.forEach((r, i) => {
      const host = hosts[i] as string;
      const previous = outcomes.get(host) as HostOutcome;
      if (isError(r)) {
        set({ ...previous, status: 'failed', detail: `rollback failed: ${firstLine(r.error)}` });
        progress(`  ${host}  rollback FAILED: ${firstLine(r.error)}`, 'fail');
      } else {
        set({ ...previous, status: 'rolled-back', generation: r.to, detail: previous.detail ?? why });
        progress(`  ${host}  back on ${short(r.to)}`, 'warn');
      }
    });
  }
}

/** "4 hosts: 1 changed, 3 unchanged" and the hosts that did not end well. */
export function summarize(result: RolloutResult, planId: string, elapsedMs: number): string[] {
  const count = (status: HostStatus) => result.hosts.filter((h) => h.status === status).length;
  const lines = [
    `plan ${planId.slice(0, 12)}: ${result.hosts.length} host(s): ${count('changed')} changed, ${count('unchanged')} unchanged, ${count('failed')} failed, ${count('rolled-back')} rolled back, ${count('not-started')} not started (${formatDuration(elapsedMs)})`,
  ];
  for (const h of result.hosts) if (h.status === 'failed' || h.status === 'rolled-back') lines.push(`  ${h.host}: ${h.status}${h.detail ? `: ${h.detail}` : ''}`);
  if (result.stoppedBecause) lines.push(`stopped: ${result.stoppedBecause.split('\n', 1)[0]}`);
  lines.push(result.outcome === 'ok' ? 'result: ok' : result.outcome === 'rolled-back' ? 'result: ROLLED BACK (exit 3)' : 'result: FAILED (exit 1)');
  return lines;
}
