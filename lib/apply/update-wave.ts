// An update wave (`upkeep update security|routine`): staging installs from the archive, upkeep
// records the exact versions staging installed and still runs after its soak, and production
// installs exactly those versions, never newer, group by group in batches with health gates.
//
// The hosts do the package work (lib/runtime/updates.sh): a staging host's `updates.sh KIND`
// installs from the archive and records what it installed with its class (small, reboot,
// restart); a production host's `updates.sh promote KIND` records the promoted versions and
// installs the small ones at once and the disruptive ones only inside its window (its routine
// timer installs them in the next window). Hosts never install an unpromoted version on their own.
//
// Groups, batches, the health gate, the soak and the fleet lock are the rollout's (rollout.ts);
// a failed gate on staging stops the wave before anything is promoted, a failure beyond a
// production group's budget stops the wave there. Every step is journalled.

import type { PlanDocument, PlannedGroup, PlannedHost } from '../plan/plan-format.ts';
import { CONFIG_DIR, RUNTIME_DIR } from '../compile/desired-state.ts';
import { healthGate, readState } from '../hosts/host-agent.ts';
import { firstLine, lastLines, pMap, type Transport } from '../hosts/transport.ts';
import { judgeHealth } from './health-judgement.ts';
import { FLEET } from './journal.ts';
import { checkUnitsOf, wavesOf, type RolloutOptions } from './rollout.ts';

export type UpdateKind = 'security' | 'routine';

/** What a package update needs: nothing (small), a reboot, or a service restart. */
export type UpdateClass = 'small' | 'reboot' | 'restart';

/** One package version staging installed, ran through its gates and soak, and promotes. */
export interface StagedPackage {
  readonly name: string;
  readonly version: string;
  readonly kind: UpdateKind;
  readonly class: UpdateClass;
  /** How long ago staging installed it (the youngest install among the staging hosts). */
  readonly ageSeconds: number;
}

export type WaveHostStatus = 'updated' | 'unchanged' | 'failed' | 'not-started';

export interface WaveHostOutcome {
  readonly host: string;
  readonly group: string;
  readonly status: WaveHostStatus;
  /** "name version" installed on this host by the wave. */
  readonly installed: readonly string[];
  /** "name version class" promoted but left for the host's maintenance window. */
  readonly deferred: readonly string[];
  readonly detail?: string;
}

export interface UpdateWaveResult {
  readonly kind: UpdateKind;
  readonly outcome: 'ok' | 'failed';
  /** 0 ok, 1 failed (nothing promoted when staging failed). */
  readonly exitCode: 0 | 1;
  /** The versions production was given; empty when the wave stopped before promotion. */
  readonly promoted: readonly StagedPackage[];
  readonly hosts: readonly WaveHostOutcome[];
  readonly stoppedBecause?: string;
  /**
   * Whether a reboot is pending on each host, read after the wave (for calendar.ics); a host that
   * could not be read is absent.
   */
  readonly rebootPending: { readonly [host: string]: boolean };
}

/** The rollout's own options that mean the same in an update wave (rollout.ts documents them). */
type SharedRolloutOptions = Pick<RolloutOptions, 'plan' | 'journal' | 'progress' | 'fleetLock' | 'parallel' | 'skipSoak' | 'sleep'>;

export interface UpdateWaveOptions extends SharedRolloutOptions {
  readonly kind: UpdateKind;
  /** The host's working connection, reused for every step. */
  readonly transport: (host: string) => Transport;
  /** Take over a fleet lock held by another (dead) run. @default false */
  readonly breakLock?: boolean;
  /** Called with the promoted versions before production starts (the CLI writes them to a file). */
  readonly onPromote?: (packages: readonly StagedPackage[]) => void;
}

const UPDATES = `${RUNTIME_DIR}/updates.sh`;
const IN_WINDOW = `${RUNTIME_DIR}/in-window.sh ${CONFIG_DIR}/window.env`;
const UPDATES_ENV = `${CONFIG_DIR}/updates.env`;
/** Package installs on a loaded host take long; the wave waits for them. */
const INSTALL_TIMEOUT_MS = 30 * 60_000;
const PACKAGE = /^[a-z0-9][a-z0-9+.-]*$/;
const VERSION = /^[A-Za-z0-9.+~:_-]+$/;

const CLASSES: readonly UpdateClass[] = ['small', 'reboot', 'restart'];
const CLASS_RANK: Record<UpdateClass, number> = { small: 0, restart: 1, reboot: 2 };

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Parses `updates.sh staged` output: "name version kind class age" lines; anything else is an error naming the host. */
export function parseStaged(host: string, text: string): StagedPackage[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [name = '', version = '', kind = '', cls = '', age = '', ...rest] = line.trim().split(/\s+/);
      if (!PACKAGE.test(name) || !VERSION.test(version) || (kind !== 'security' && kind !== 'routine') || !CLASSES.includes(cls as UpdateClass) || !/^\d+$/.test(age) || rest.length > 0) {
        throw new Error(`${host}: unexpected line from updates.sh staged: ${JSON.stringify(line)}`);
      }
      return { name, version, kind, class: cls as UpdateClass, ageSeconds: Number(age) };
    });
}

/** What `updates.sh promote` reports: "installed NAME VERSION", "deferred NAME VERSION CLASS", "held NAME VERSION" lines. */
export function parsePromoteReport(text: string): { installed: string[]; deferred: string[]; held: string[] } {
  const report = { installed: [] as string[], deferred: [] as string[], held: [] as string[] };
  for (const line of text.split('\n')) {
    const [what, ...rest] = line.trim().split(/\s+/);
    if (what === 'installed' || what === 'deferred' || what === 'held') report[what].push(rest.join(' '));
  }
  return report;
}

/**
 * The versions to promote: of the wave's kind, what every staging host that installed a package
 * agrees on, both before and after the soak (a version a staging host moved past during the soak
 * was not soaked). The most disruptive class any staging host saw wins.
 */
export function promotable(kind: UpdateKind, beforeSoak: ReadonlyMap<string, readonly StagedPackage[]>, afterSoak: ReadonlyMap<string, readonly StagedPackage[]>): { packages: StagedPackage[]; dropped: string[] } {
  const dropped: string[] = [];
  const seen = new Map<string, StagedPackage[]>();
  for (const [host, before] of beforeSoak) {
    const after = afterSoak.get(host) ?? [];
    for (const p of before) {
      if (kind === 'security' && p.kind !== 'security') continue;
      const soaked = after.some((a) => a.name === p.name && a.version === p.version);
      if (!soaked) dropped.push(`${p.name} ${p.version}: ${host} no longer runs it after the soak`);
      seen.set(p.name, [...(seen.get(p.name) ?? []), soaked ? p : { ...p, version: '' }]);
    }
  }
  const packages: StagedPackage[] = [];
  for (const [name, entries] of seen) {
    const versions = new Set(entries.map((e) => e.version));
    if (versions.has('')) continue;
    if (versions.size > 1) {
      dropped.push(`${name}: staging hosts run different versions (${[...versions].sort().join(', ')})`);
      continue;
    }
    const worst = entries.reduce((a, b) => (CLASS_RANK[b.class] > CLASS_RANK[a.class] ? b : a));
    const youngest = Math.min(...entries.map((e) => e.ageSeconds));
    packages.push({ ...worst, kind: entries.some((e) => e.kind === 'security') ? 'security' : worst.kind, ageSeconds: youngest });
  }
  return { packages: packages.sort((a, b) => a.name.localeCompare(b.name)), dropped: dropped.sort() };
}

/** Hosts of a group that carry an update policy (its updates.env is among their files). */
function updatedHosts(plan: PlanDocument, group: PlannedGroup): string[] {
  return group.hosts.filter((h) => plan.hosts[h]?.files.some((f) => f.path === UPDATES_ENV));
}

/**
 * Runs the wave, then reads on every host of the wave whether a reboot is now pending (the
 * customers' calendar says so), whatever the outcome: a stopped wave leaves hosts as they are too.
 */
export async function updateWave(options: UpdateWaveOptions): Promise<UpdateWaveResult> {
  const result = await runWave(options);
  const hosts = result.hosts.map((h) => h.host);
  const rebootPending: Record<string, boolean> = {};
  await pMap(hosts, Math.min(options.parallel ?? 8, Math.max(hosts.length, 1)), async (host) => {
    try {
      const state = await options.journal.step({ host, step: 'read-reboot-pending' }, () => readState(options.transport(host)), (s) => ({
        result: 'ok',
        detail: s.rebootRequired === undefined ? 'not known' : s.rebootRequired ? 'a reboot is pending' : 'no reboot pending',
      }));
      if (state.rebootRequired !== undefined) rebootPending[host] = state.rebootRequired;
    } catch (error) {
      options.progress(`  ${host}  could not read whether a reboot is pending: ${firstLine(error)}`, 'warn');
    }
  });
  options.journal.finish(result.outcome, result.exitCode);
  return { ...result, rebootPending: Object.fromEntries(Object.entries(rebootPending).sort(([a], [b]) => a.localeCompare(b))) };
}

async function runWave(options: UpdateWaveOptions): Promise<Omit<UpdateWaveResult, 'rebootPending'>> {
  const { plan, kind, journal, progress } = options;
  const parallel = options.parallel ?? 8;
  const sleep = options.sleep ?? defaultSleep;
  const groups = plan.groups.map((g) => ({ ...g, hosts: updatedHosts(plan, g) })).filter((g) => g.hosts.length > 0);
  const staging = groups.filter((g) => g.staging);
  const production = groups.filter((g) => !g.staging);
  const outcomes = new Map<string, WaveHostOutcome>();
  for (const g of groups) for (const host of g.hosts) outcomes.set(host, { host, group: g.name, status: 'not-started', installed: [], deferred: [] });
  let promoted: StagedPackage[] = [];
  let waveNumber = 0;
  const finish = (stoppedBecause?: string): Omit<UpdateWaveResult, 'rebootPending'> => {
    const hosts = [...outcomes.values()];
    const failed = stoppedBecause !== undefined || hosts.some((h) => h.status === 'failed' || h.status === 'not-started');
    return { kind, outcome: failed ? 'failed' : 'ok', exitCode: failed ? 1 : 0, promoted, hosts, ...(stoppedBecause === undefined ? {} : { stoppedBecause }) };
  };
  const stop = (why: string, group: string): Omit<UpdateWaveResult, 'rebootPending'> => {
    journal.record({ host: FLEET, step: 'stop', group }, 'failed', new Date(), why);
    progress(why, 'fail');
    return finish(why);
  };
  if (staging.length === 0) return finish('no staging group with an update policy: nothing may be promoted untested');
  const firstProduction = groups.findIndex((g) => !g.staging);
  if (firstProduction >= 0 && groups.slice(firstProduction).some((g) => g.staging)) {
    return finish(`staging group(s) ${groups.slice(firstProduction).filter((g) => g.staging).map((g) => g.name).join(', ')} come after a production group in the plan's order: an update wave tests on staging first`);
  }

  const lock = options.fleetLock;
  let lockHeld = false;
  try {
    if (lock) {
      try {
        await journal.step({ host: lock.host, step: 'fleet-lock' }, () => lock.acquire(options.breakLock ?? false));
        lockHeld = true;
      } catch (error) {
        progress(`fleet lock: ${firstLine(error)}`, 'fail');
        return finish((error as Error).message);
      }
    }

    // 1. Staging installs from the archive, batch by batch, each batch gated.
    for (const group of staging) {
      const failed = await waves(group, stageOn);
      if (failed !== undefined) return stop(`${group.name}: ${failed} staging host(s) failed; nothing is promoted`, group.name);
    }

    // 2. The soak: counted from when staging installed each version (its own timer may have done
    // so hours ago), so the wave waits only for what is younger than the soak time.
    const stagingHosts = staging.flatMap((g) => g.hosts);
    const beforeSoak = await readStaged(stagingHosts);
    const candidates = promotable(kind, beforeSoak, beforeSoak).packages;
    const soakSeconds = Math.max(...staging.map((g) => g.soakSeconds));
    const youngest = Math.min(...candidates.map((p) => p.ageSeconds));
    const remaining = candidates.length === 0 || production.length === 0 ? 0 : Math.max(0, soakSeconds - youngest);
    const soak = { host: FLEET, step: 'soak', group: staging.map((g) => g.name).join(',') };
    if (remaining === 0) {
      journal.record(soak, 'skipped', new Date(), candidates.length === 0 ? 'nothing to promote' : `every version ran on staging for ${soakSeconds}s already`);
    } else if (options.skipSoak) {
      journal.record(soak, 'skipped', new Date(), `--skip-soak: ${remaining}s of staging's ${soakSeconds}s soak skipped`);
      progress(`soak of staging (${remaining}s left) skipped: --skip-soak`, 'warn');
    } else {
      progress(`soak: watching staging for ${remaining}s more (soak ${soakSeconds}s) before promoting`, 'heading');
      await journal.step(soak, () => sleep(remaining * 1000));
    }

    // 3. The manifest: what staging ran through the soak.
    const afterSoak = remaining > 0 ? await readStaged(stagingHosts) : beforeSoak;
    const { packages, dropped } = promotable(kind, beforeSoak, afterSoak);

    // 4. Staging's gate, right before promotion: every staging host that runs a version about to be
    // promoted, whatever installed it. Staging's own timer usually installed a fix before the
    // pipeline ran (the host is "unchanged" in this wave, the fix older than the soak, and
    // a routine wave outside the window installs nothing): without this gate nothing would check
    // staging at all. A host the gate cannot run on was not seen to pass: nothing is promoted.
    if (packages.length > 0) {
      const running = stagingHosts.filter((host) => afterSoak.get(host)?.some((p) => packages.some((q) => q.name === p.name && q.version === p.version)));
      const failures = await gate(running, waveNumber, soak.group);
      if (failures.size > 0) {
        for (const [host, detail] of failures) outcomes.set(host, { ...(outcomes.get(host) as WaveHostOutcome), status: 'failed', detail });
        return stop(`${failures.size} staging host(s) failed their health gate before promotion; nothing is promoted`, soak.group);
      }
    }
    for (const why of dropped) progress(`  not promoted: ${why}`, 'warn');
    promoted = packages;
    journal.record({ host: FLEET, step: 'promote' }, 'ok', new Date(), packages.length === 0 ? 'nothing to promote' : packages.map((p) => `${p.name}=${p.version} (${p.kind}, ${p.class})`).join(', '));
    options.onPromote?.(packages);
    progress(`promoting ${packages.length} ${kind} package version(s)${packages.map((p) => `\n  ${p.name} ${p.version} (${p.class})`).join('')}`, 'heading');

    // 5. Production, group by group in batches, soaking between groups as the rollout does.
    for (const [index, group] of production.entries()) {
      if (packages.length === 0) {
        for (const host of group.hosts) outcomes.set(host, { host, group: group.name, status: 'unchanged', installed: [], deferred: [] });
        continue;
      }
      const failed = await waves(group, promoteOn);
      if (failed !== undefined) return stop(`${group.name}: ${failed} host(s) failed (failure budget ${group.failureBudget}); the wave stops here`, group.name);
      const next = production[index + 1];
      const changed = group.hosts.filter((h) => outcomes.get(h)?.status === 'updated');
      if (next === undefined || changed.length === 0 || group.soakSeconds <= 0) continue;
      const groupSoak = { host: FLEET, step: 'soak', group: group.name };
      if (options.skipSoak) {
        journal.record(groupSoak, 'skipped', new Date(), `--skip-soak: ${group.soakSeconds}s soak of ${group.name} skipped`);
        continue;
      }
      progress(`soak: watching ${group.name} for ${group.soakSeconds}s before ${next.name}`, 'heading');
      await journal.step(groupSoak, () => sleep(group.soakSeconds * 1000));
      const failures = await gate(changed, waveNumber, group.name);
      if (failures.size > 0) {
        for (const [host, detail] of failures) outcomes.set(host, { ...(outcomes.get(host) as WaveHostOutcome), status: 'failed', detail });
        return stop(`${group.name}: ${failures.size} host(s) failed their health gate after the soak; stopped before ${next.name}`, group.name);
      }
    }
    return finish();
  } finally {
    if (lock && lockHeld) await journal.step({ host: lock.host, step: 'fleet-unlock' }, () => lock.release()).catch(() => undefined);
  }

  /** Runs a group in batches of its batchSize; returns the failure count when it exceeds what the group allows. */
  async function waves(group: PlannedGroup, step: (host: string, group: string, wave: number) => Promise<WaveHostOutcome>): Promise<number | undefined> {
    // Staging allows no failure: a fix that breaks staging is never promoted.
    const budget = group.staging ? 0 : group.failureBudget;
    let failures = 0;
    for (const wave of wavesOf(group)) {
      waveNumber += 1;
      progress(`wave ${waveNumber} · ${group.name}${group.staging ? ' (staging: from the archive)' : ' (promoted versions)'} · ${wave.join(', ')}`, 'heading');
      const results = await pMap(wave, Math.min(parallel, wave.length), (host) => step(host, group.name, waveNumber));
      for (const r of results) outcomes.set(r.host, r);
      const gateFailures = await gate(results.filter((r) => r.status === 'updated').map((r) => r.host), waveNumber, group.name);
      for (const [host, detail] of gateFailures) outcomes.set(host, { ...(outcomes.get(host) as WaveHostOutcome), status: 'failed', detail });
      failures += results.filter((r) => r.status === 'failed').length + gateFailures.size;
      if (failures > budget) return failures;
    }
    return undefined;
  }

  async function run(host: string, step: string, wave: number | undefined, group: string, script: string, input?: string): Promise<string> {
    return journal.step({ host, step, ...(wave === undefined ? {} : { wave }), group }, async () => {
      const result = await options.transport(host).run(script, input, { timeoutMs: INSTALL_TIMEOUT_MS });
      if (result.exitCode !== 0) throw new Error(`${host}: ${script.split(' ').slice(0, 2).join(' ')} exited with ${result.exitCode}: ${lastLines(result.stderr, 5)}`);
      return result.stdout;
    });
  }

  /** Staging: install from the archive (routine: only inside the host's window). */
  async function stageOn(host: string, group: string, wave: number): Promise<WaveHostOutcome> {
    const base = { host, group, installed: [], deferred: [] };
    try {
      const before = await readStagedOn(host, group);
      // The routine kind installs only inside the host's window; outside it, what staging already
      // installed in its last window is what gets promoted.
      const out = await run(host, `install-${kind}`, wave, group, kind === 'routine' ? `if ${IN_WINDOW} >/dev/null; then ${UPDATES} routine; else echo 'window closed'; fi` : `${UPDATES} security`);
      const after = await readStagedOn(host, group);
      const installed = after.filter((p) => !before.some((b) => b.name === p.name && b.version === p.version)).map((p) => `${p.name} ${p.version}`);
      const closed = out.trim().endsWith('window closed');
      progress(`  ${host}  ${closed ? 'window closed: nothing installed now' : installed.length === 0 ? 'nothing new installed' : `installed ${installed.join(', ')}`}`, 'ok');
      return { ...base, installed, status: installed.length > 0 ? 'updated' : 'unchanged', ...(closed ? { detail: 'window closed' } : {}) };
    } catch (error) {
      progress(`  ${host}  failed: ${firstLine(error)}`, 'fail');
      return { ...base, status: 'failed', detail: firstLine(error) };
    }
  }

  /** Production: record the promoted versions, install the small ones (all of them inside the window). */
  async function promoteOn(host: string, group: string, wave: number): Promise<WaveHostOutcome> {
    const base = { host, group, installed: [] as string[], deferred: [] as string[] };
    try {
      const manifest = promoted.map((p) => `${p.name} ${p.version} ${p.kind} ${p.class}\n`).join('');
      const { installed, deferred, held } = parsePromoteReport(await run(host, `promote-${kind}`, wave, group, `${UPDATES} promote ${kind}`, manifest));
      const said = [
        installed.length > 0 && `installed ${installed.join(', ')}`,
        deferred.length > 0 && `waits for its window: ${deferred.join(', ')}`,
        held.length > 0 && `held by its policy, not installed: ${held.join(', ')}`,
      ].filter(Boolean);
      progress(`  ${host}  ${said.length > 0 ? said.join('; ') : 'already up to date'}`, 'ok');
      return { ...base, installed, deferred, status: installed.length > 0 ? 'updated' : 'unchanged' };
    } catch (error) {
      progress(`  ${host}  failed: ${firstLine(error)}`, 'fail');
      return { ...base, status: 'failed', detail: firstLine(error) };
    }
  }

  async function readStagedOn(host: string, group: string): Promise<StagedPackage[]> {
    return parseStaged(host, await run(host, 'read-staged', undefined, group, `${UPDATES} staged`));
  }

  async function readStaged(hosts: readonly string[]): Promise<Map<string, StagedPackage[]>> {
    const read = await pMap(hosts, Math.min(parallel, hosts.length), async (host) => [host, await readStagedOn(host, outcomes.get(host)?.group ?? '')] as const);
    return new Map(read);
  }

  /**
   * Health gate on `hosts` by health-judgement's rules, judged without a "before": a version may
   * have been installed hours ago by the host's timer, and a check failing now, even one that was
   * failing before the install, is a check the host has not passed with the version it runs. A
   * host the gate cannot run on fails it.
   */
  async function gate(hosts: readonly string[], wave: number, group: string): Promise<Map<string, string>> {
    const failures = new Map<string, string>();
    if (hosts.length === 0) return failures;
    await pMap(hosts, Math.min(parallel, hosts.length), async (host) => {
      let reported: readonly string[] = [];
      try {
        const verdict = await journal.step(
          { host, step: 'health-gate', wave, group },
          async () => judgeHealth(await healthGate(options.transport(host), checkUnitsOf(plan.hosts[host] as PlannedHost)), undefined),
          (v) => (v.blamed.length === 0 ? { result: 'ok', ...(v.reported.length > 0 && { detail: v.reported.join('; ') }) } : { result: 'failed', detail: v.blamed.join('; ') }),
        );
        if (verdict.blamed.length > 0) failures.set(host, `health gate: ${verdict.blamed.join('; ')}`);
        reported = verdict.reported;
      } catch (error) {
        failures.set(host, `health gate: ${firstLine(error)}`);
      }
      const problem = failures.get(host);
      progress(`  ${host}  health gate ${problem === undefined ? 'ok' : `FAILED: ${problem}`}`, problem === undefined ? 'ok' : 'fail');
      for (const line of reported) progress(`  ${host}    ${line}`, 'warn');
    });
    return failures;
  }
}

/** "security wave: 2 version(s) promoted; 3 host(s): 2 updated, ..." and the hosts that did not end well. */
export function summarizeWave(result: UpdateWaveResult): string[] {
  const count = (status: WaveHostStatus) => result.hosts.filter((h) => h.status === status).length;
  const lines = [
    `${result.kind} wave: ${result.promoted.length} version(s) promoted; ${result.hosts.length} host(s): ${count('updated')} updated, ${count('unchanged')} unchanged, ${count('failed')} failed, ${count('not-started')} not started`,
  ];
  for (const h of result.hosts) {
    if (h.status === 'failed') lines.push(`  ${h.host}: failed: ${h.detail ?? ''}`);
    if (h.deferred.length > 0) lines.push(`  ${h.host}: waits for its maintenance window: ${h.deferred.join(', ')}`);
  }
  if (result.stoppedBecause) lines.push(`stopped: ${result.stoppedBecause.split('\n', 1)[0]}`);
  lines.push(result.outcome === 'ok' ? 'result: ok' : 'result: FAILED (exit 1)');
  return lines;
}
