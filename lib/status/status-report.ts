// `upkeep status`: the evidence that the maintenance contract is kept. Judges what each host
// recorded (lib/hosts/host-facts.ts) against the resolved policy and the plan: one report per
// host and for the fleet. A pure function of its inputs, so the judgement is unit-tested without
// hosts. The report is the `--json` output: its field names are documented in the README and stable;
// bump STATUS_FORMAT_VERSION on any incompatible change.
//
// Each judged item has a state: "ok", "out" (out of contract), "unknown" (the host has not
// recorded it) or "exempt" (the policy exempts the host, with a reason). Unknown counts as out of
// contract only where the contract cannot be shown without it: the generation (an unreachable
// host) and a host's last backup snapshot. A routine run, repository check or restore drill not
// recorded yet may simply not have been due since the host joined.

import type { AlertRecord, CheckRecord, HostFacts, HostFactsResult, JobRecord } from '../hosts/host-facts.ts';
import { checkUnitName } from '../compile/monitoring.ts';
import type { PlanDocument } from '../plan/plan-format.ts';
import { tryParseDuration } from '../policy/duration.ts';
import type { ResolvedCheck, ResolvedFleet, ResolvedHost, ResolvedWindow } from '../policy/resolved.ts';
import { windowOpenings } from '../policy/zoned-time.ts';
import { age as ageText } from './status-text.ts';

export const STATUS_FORMAT_VERSION = 1;

export type ItemState = 'ok' | 'out' | 'unknown' | 'exempt';

const HOUR = 3600;
const DAY = 86_400;
/** Grace after a deadline for a timer's randomized delay and a slow run. */
const GRACE_SECONDS = HOUR;
/** A weekly repository check or restore drill may miss one week, not two. */
const WEEKLY_JOB_MAX_AGE_SECONDS = 15 * DAY;
/** How far ahead the coming maintenance windows are listed. */
const WINDOWS_AHEAD_SECONDS = 35 * DAY;
/** The default backup-freshness limit (the check's own default). */
const DEFAULT_BACKUP_MAX_AGE_SECONDS = 26 * HOUR;

export interface JobStatus {
  readonly state: ItemState;
  /** Seconds since the epoch; null when not recorded. */
  readonly at: number | null;
  readonly age_seconds: number | null;
  readonly result: string | null;
  /** Text from the host (escape it). */
  readonly detail: string | null;
}

export interface CheckStatus {
  readonly name: string;
  readonly id: string;
  readonly kind: string;
  readonly runs_on: string;
  readonly state: ItemState;
  /** ok, warning, critical or unknown as the check last said; null when it never ran. */
  readonly severity: string | null;
  /** Since when it has been passing or failing. */
  readonly since: number | null;
  readonly last_run_at: number | null;
  /** Its last message (text from the host). */
  readonly message: string | null;
  /** Alerts sent for it within the report period. */
  readonly alerts_in_period: number;
  /** From the first failing run to the first alert a route accepted, for the current failure. */
  readonly time_to_alert_seconds: number | null;
  readonly sla_seconds: number;
}

export interface HostStatus {
  readonly host: string;
  readonly group: string;
  readonly reachable: boolean;
  /** Why the host could not be read. */
  readonly error: string | null;
  readonly in_contract: boolean;
  /** One line per item out of contract. */
  readonly problems: readonly string[];
  readonly generation: { readonly state: ItemState; readonly host: string | null; readonly plan: string };
  readonly updates: {
    readonly state: ItemState;
    readonly exempt: string | null;
    readonly routine: { readonly state: ItemState; readonly last_run_at: number | null; readonly window_opening: string | null; readonly inside_window: boolean | null; readonly max_age_seconds: number | null };
    readonly security: { readonly state: ItemState; readonly pending: number | null; readonly first_seen_at: number | null; readonly age_seconds: number | null; readonly deadline_seconds: number | null };
    readonly reboot: { readonly state: ItemState; readonly pending: boolean | null; readonly since: number | null; readonly max_pending_seconds: number | null };
  };
  readonly backups: {
    readonly state: ItemState;
    readonly exempt: string | null;
    readonly snapshot: JobStatus & { readonly max_age_seconds: number | null };
    readonly repository_check: JobStatus;
    readonly restore_drill: JobStatus;
  };
  readonly monitoring: { readonly state: ItemState; readonly exempt: string | null; readonly checks: readonly CheckStatus[] };
}

export interface WindowOpening {
  readonly host: string;
  /** Seconds since the epoch. */
  readonly opens_at: number;
  readonly closes_at: number;
  readonly time_zone: string;
}

export interface StatusReport {
  readonly format_version: typeof STATUS_FORMAT_VERSION;
  readonly fleet: string;
  readonly plan_id: string;
  /** When the report was made, by the applier's clock (seconds since the epoch). */
  readonly generated_at: number;
  /** Alerts are counted over this many seconds before generated_at. */
  readonly period_seconds: number;
  readonly in_contract: boolean;
  readonly summary: { readonly hosts: number; readonly in_contract: number; readonly out_of_contract: number; readonly unreachable: number };
  readonly hosts: readonly HostStatus[];
  /** The maintenance windows opening in the next 35 days, soonest first. */
  readonly windows: readonly WindowOpening[];
}

export interface StatusInput {
  readonly fleet: ResolvedFleet;
  readonly plan: Pick<PlanDocument, 'fleet' | 'plan_id' | 'hosts'>;
  readonly facts: Readonly<Record<string, HostFactsResult>>;
  /** The applier's clock, seconds since the epoch. */
  readonly now: number;
  readonly periodSeconds: number;
}

/** Worst of several states: out > unknown > ok; all exempt stays exempt. */
function worst(states: readonly ItemState[]): ItemState {
  if (states.includes('out')) return 'out';
  if (states.includes('unknown')) return 'unknown';
  if (states.length > 0 && states.every((s) => s === 'exempt')) return 'exempt';
  return 'ok';
}

/** Longest time between two openings of a window (monthly "2nd Sunday" windows are 4 or 5 weeks apart). */
function windowPeriodSeconds(window: ResolvedWindow): number {
  return window.every === 'week' ? 7 * DAY : 35 * DAY;
}

function job(record: JobRecord | undefined, now: number, maxAge: number, what: string, problems: string[], unknownIsOut: boolean): JobStatus {
  if (!record) {
    if (unknownIsOut) problems.push(`${what}: none recorded`);
    return { state: unknownIsOut ? 'out' : 'unknown', at: null, age_seconds: null, result: null, detail: null };
  }
  const age = Math.max(0, now - record.at);
  let state: ItemState = 'ok';
  if (record.result === 'failed') {
    state = 'out';
    problems.push(`${what} failed ${ageText(age)} ago`);
  } else if (age > maxAge) {
    state = 'out';
    problems.push(`${what} is ${ageText(age)} old (limit ${ageText(maxAge)})`);
  }
  return { state, at: record.at, age_seconds: age, result: record.result, detail: record.detail };
}

/** The last run of a check about `host`, from the facts of the host it runs on. */
type CheckLookup = (check: ResolvedCheck) => CheckRecord | undefined;

function updatesStatus(host: ResolvedHost, facts: HostFacts | undefined, lookup: CheckLookup, problems: string[]): HostStatus['updates'] {
  if (!host.updates) {
    const none = { state: 'exempt' as const };
    return {
      state: 'exempt',
      exempt: host.exempt.updates ?? null,
      routine: { ...none, last_run_at: null, window_opening: null, inside_window: null, max_age_seconds: null },
      security: { ...none, pending: null, first_seen_at: null, age_seconds: null, deadline_seconds: null },
      reboot: { ...none, pending: null, since: null, max_pending_seconds: null },
    };
  }
  const u = host.updates;
  const maxGap = windowPeriodSeconds(u.window) + u.window.durationSeconds + GRACE_SECONDS;
  const now = facts?.now ?? 0;

  let routine: HostStatus['updates']['routine'];
  if (!facts?.routineRun) {
    routine = { state: 'unknown', last_run_at: null, window_opening: null, inside_window: null, max_age_seconds: maxGap };
  } else {
    const age = now - facts.routineRun.at;
    const state: ItemState = age > maxGap ? 'out' : 'ok';
    if (state === 'out') problems.push(`routine updates last ran ${ageText(age)} ago (at least every ${ageText(maxGap)}, inside the window)`);
    // updates.sh records a routine run only when the window was open.
    routine = { state, last_run_at: facts.routineRun.at, window_opening: facts.routineRun.opening, inside_window: true, max_age_seconds: maxGap };
  }

  let security: HostStatus['updates']['security'];
  const deadline = u.securityDeadlineSeconds;
  if (facts?.securityPending) {
    const age = Math.max(0, now - facts.securityPending.since);
    const state: ItemState = age > deadline ? 'out' : 'ok';
    if (state === 'out') problems.push(`${facts.securityPending.count} security fix(es) pending for ${ageText(age)} (deadline ${ageText(deadline)})`);
    security = { state, pending: facts.securityPending.count, first_seen_at: facts.securityPending.since, age_seconds: age, deadline_seconds: deadline };
  } else if (securityCheckPassed(host, lookup)) {
    // The security-updates check ran and found nothing pending (it keeps no record then).
    security = { state: 'ok', pending: 0, first_seen_at: null, age_seconds: null, deadline_seconds: deadline };
  } else {
    security = { state: 'unknown', pending: null, first_seen_at: null, age_seconds: null, deadline_seconds: deadline };
  }

  let reboot: HostStatus['updates']['reboot'];
  const rebootSince = facts?.rebootPendingSince ?? facts?.rebootRequired ?? null;
  if (!facts) {
    reboot = { state: 'unknown', pending: null, since: null, max_pending_seconds: maxGap };
  } else if (rebootSince === null || u.reboot === 'never') {
    reboot = { state: 'ok', pending: rebootSince !== null, since: rebootSince, max_pending_seconds: u.reboot === 'never' ? null : maxGap };
  } else {
    // A pending reboot waits for the next window, not longer.
    const age = Math.max(0, now - rebootSince);
    const state: ItemState = age > maxGap ? 'out' : 'ok';
    if (state === 'out') problems.push(`a reboot has been pending for ${ageText(age)} (it must happen in the next window, at most ${ageText(maxGap)})`);
    reboot = { state, pending: true, since: rebootSince, max_pending_seconds: maxGap };
  }
  return { state: worst([routine.state, security.state, reboot.state]), exempt: null, routine, security, reboot };
}

function securityCheckPassed(host: ResolvedHost, lookup: CheckLookup): boolean {
  const check = host.monitoring?.checks.find((c) => c.spec.kind === 'security-updates');
  return check !== undefined && lookup(check)?.severity === 'ok';
}

function backupMaxAge(host: ResolvedHost): number {
  const freshness = host.monitoring?.checks.find((c) => c.spec.kind === 'backup-freshness');
  const maxAge = freshness?.spec.kind === 'backup-freshness' ? tryParseDuration(freshness.spec.maxAge) : undefined;
  return maxAge ?? DEFAULT_BACKUP_MAX_AGE_SECONDS;
}

function backupsStatus(host: ResolvedHost, facts: HostFacts | undefined, problems: string[]): HostStatus['backups'] {
  const unknownJob: JobStatus = { state: 'unknown', at: null, age_seconds: null, result: null, detail: null };
  if (!host.backups) {
    const exempt: JobStatus = { ...unknownJob, state: 'exempt' };
    return { state: 'exempt', exempt: host.exempt.backups ?? null, snapshot: { ...exempt, max_age_seconds: null }, repository_check: exempt, restore_drill: exempt };
  }
  const maxAge = backupMaxAge(host);
  if (!facts) return { state: 'unknown', exempt: null, snapshot: { ...unknownJob, max_age_seconds: maxAge }, repository_check: unknownJob, restore_drill: unknownJob };
  const snapshot = { ...job(facts.backups.backup, facts.now, maxAge, 'last backup snapshot', problems, true), max_age_seconds: maxAge };
  const check = job(facts.backups.check, facts.now, WEEKLY_JOB_MAX_AGE_SECONDS, 'last repository check', problems, false);
  const drill = job(facts.backups.drill, facts.now, WEEKLY_JOB_MAX_AGE_SECONDS, 'last restore drill', problems, false);
  return { state: worst([snapshot.state, check.state, drill.state]), exempt: null, snapshot, repository_check: check, restore_drill: drill };
}

/** A check's id on its host: its state file's name (run-check.sh) and its unit's "upkeep-check-<id>". */
function checkId(check: ResolvedCheck): string {
  return checkUnitName(check).slice('upkeep-check-'.length);
}

/** The current failure's first alert, from the alerts the check's host recorded. */
function timeToAlert(since: number | null, severity: string | null, alerts: readonly AlertRecord[]): number | null {
  if (since === null || severity === null || severity === 'ok') return null;
  const first = alerts.find((a) => a.status === 'firing' && a.at >= since);
  return first ? first.at - since : null;
}

function monitoringStatus(host: ResolvedHost, facts: Readonly<Record<string, HostFactsResult>>, periodSeconds: number, problems: string[]): HostStatus['monitoring'] {
  if (!host.monitoring) return { state: 'exempt', exempt: host.exempt.monitoring ?? null, checks: [] };
  const m = host.monitoring;
  const checks = m.checks.map((check): CheckStatus => {
    const id = checkId(check);
    const runner = facts[check.runsOn];
    const base = { name: check.name, id, kind: check.spec.kind, runs_on: check.runsOn, sla_seconds: m.slaSeconds };
    const record = runner && !('error' in runner) ? runner.checks[id] : undefined;
    if (!runner || 'error' in runner || !record) {
      return { ...base, state: 'unknown', severity: null, since: null, last_run_at: null, message: null, alerts_in_period: 0, time_to_alert_seconds: null };
    }
    const alerts = runner.alerts.filter((a) => a.checkId === id);
    const inPeriod = alerts.filter((a) => a.status === 'firing' && a.at >= runner.now - periodSeconds).length;
    const toAlert = timeToAlert(record.since, record.severity, alerts);
    let state: ItemState = 'ok';
    const silentFor = runner.now - record.at;
    const label = `check ${check.name}${check.runsOn === host.name ? '' : ` (on ${check.runsOn})`}`;
    // A warning asks for attention without breaking the promise (security fixes pending within
    // their deadline, a reboot waiting for the window): critical and unknown are breaches.
    if (record.severity === 'critical' || record.severity === 'unknown') {
      state = 'out';
      problems.push(`${label} is ${record.severity}${record.since !== null ? ` since ${ageText(runner.now - record.since)} ago` : ''}`);
      if (record.since !== null && toAlert === null && runner.now - record.since > m.slaSeconds) problems.push(`${label}: no alert sent within the SLA (${ageText(m.slaSeconds)})`);
      if (toAlert !== null && toAlert > m.slaSeconds) problems.push(`${label}: the alert took ${toAlert} s, over the SLA of ${m.slaSeconds} s`);
    }
    if (silentFor > 3 * check.intervalSeconds + 10 * 60) {
      state = 'out';
      problems.push(`${label} has not run for ${ageText(silentFor)} (every ${check.intervalSeconds} s)`);
    }
    return { ...base, state, severity: record.severity, since: record.since, last_run_at: record.at, message: record.message, alerts_in_period: inPeriod, time_to_alert_seconds: toAlert };
  });
  return { state: worst(checks.map((c) => c.state)), exempt: null, checks };
}

function hostStatus(host: ResolvedHost, input: StatusInput): HostStatus {
  const planned = input.plan.hosts[host.name];
  const result = input.facts[host.name];
  const facts = result && !('error' in result) ? result : undefined;
  const error = result && 'error' in result ? result.error : facts ? null : 'not read';
  const problems: string[] = [];
  if (error !== null) problems.push(`unreachable: ${error}`);
  const planGeneration = planned?.generation ?? '';
  let generationState: ItemState = 'ok';
  if (!facts) generationState = 'out';
  else if (facts.generation !== planGeneration) {
    generationState = 'out';
    problems.push(`on generation ${facts.generation ?? 'none'}, the plan installs ${planGeneration}`);
  }
  const lookup: CheckLookup = (check) => {
    const runner = input.facts[check.runsOn];
    return runner && !('error' in runner) ? runner.checks[checkId(check)] : undefined;
  };
  const updates = updatesStatus(host, facts, lookup, problems);
  const backups = backupsStatus(host, facts, problems);
  const monitoring = monitoringStatus(host, input.facts, input.periodSeconds, problems);
  const inContract = [generationState, updates.state, backups.state, monitoring.state].every((s) => s !== 'out');
  return {
    host: host.name,
    group: host.group,
    reachable: facts !== undefined,
    error,
    in_contract: inContract,
    problems,
    generation: { state: generationState, host: facts?.generation ?? null, plan: planGeneration },
    updates,
    backups,
    monitoring,
  };
}

function comingWindows(fleet: ResolvedFleet, now: number): WindowOpening[] {
  return fleet.hosts
    .flatMap((host) =>
      host.updates
        ? windowOpenings(host.updates.window, now * 1000, (now + WINDOWS_AHEAD_SECONDS) * 1000).map((ms) => ({
            host: host.name,
            opens_at: ms / 1000,
            closes_at: ms / 1000 + host.updates!.window.durationSeconds,
            time_zone: host.updates!.window.timeZone,
          }))
        : [],
    )
    .sort((a, b) => a.opens_at - b.opens_at || (a.host < b.host ? -1 : 1));
}

/** The status of every host of the plan that the policy knows, and of the fleet. */
export function buildStatusReport(input: StatusInput): StatusReport {
  const hosts = input.fleet.hosts.filter((h) => Object.hasOwn(input.plan.hosts, h.name)).map((h) => hostStatus(h, input));
  const inContract = hosts.filter((h) => h.in_contract).length;
  return {
    format_version: STATUS_FORMAT_VERSION,
    fleet: input.plan.fleet,
    plan_id: input.plan.plan_id,
    generated_at: input.now,
    period_seconds: input.periodSeconds,
    in_contract: inContract === hosts.length,
    summary: { hosts: hosts.length, in_contract: inContract, out_of_contract: hosts.length - inContract, unreachable: hosts.filter((h) => !h.reachable).length },
    hosts,
    windows: comingWindows(input.fleet, input.now),
  };
}
