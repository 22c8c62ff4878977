// validate: the whole-fleet rules of the maintenance contract. Pure; returns every issue at once.

import { alertRouteIssues } from './alert-route-rules.ts';
import { responseTime } from './check-timing.ts';
import { monitorHeartbeatIssues } from './monitor-heartbeat.ts';
import { formatDuration } from './duration.ts';
import type { PolicyIssue, PolicyPath } from './errors.ts';
import type { CheckKind, FleetSpec } from './model.ts';
import type { ResolvedFleet, ResolvedGroup, ResolvedHost, ResolvedWindow } from './resolved.ts';
import { secretIssues } from './secret-rules.ts';
import { windowOpenings } from './zoned-time.ts';

/**
 * Time allowed for one production batch in the security deadline arithmetic: install, health
 * gate and confirmation. A documented allowance, not a measurement.
 */
export const BATCH_ALLOWANCE_SECONDS = 15 * 60;

/** Windows are compared over this many weeks from a fixed date, so the result never depends on today. */
const WINDOW_SAMPLE = { from: Date.UTC(2027, 0, 4), weeks: 16 };

type Issues = PolicyIssue[];

/** Checks that read the host's own disks, sensors, units or files. */
const HOST_LOCAL_CHECKS: ReadonlySet<CheckKind> = new Set(['smart', 'cpu-temperature', 'disk-usage', 'failed-units', 'backup-freshness', 'security-updates', 'reboot-required']);

/** A restic sftp repository as the compiler takes it apart: sftp:[user@]host:/absolute/path. */
export const SFTP_REPOSITORY = /^sftp:(?:([a-z_][a-z0-9_-]*)@)?([A-Za-z0-9.-]+):(\/[A-Za-z0-9._\/-]+)$/;

/** sftp user names are "restic-<host>"; Linux user names have at most 32 characters. */
const MAX_BACKUP_CLIENT_NAME = 32 - 'restic-'.length;

function coverage(host: ResolvedHost, issues: Issues): void {
  const needs = [
    ['updates', host.updates !== undefined, 'update policy'],
    ['backups', host.backups !== undefined, 'backup policy'],
    ['monitoring', host.monitoring !== undefined && host.monitoring.checks.length > 0, 'monitoring policy with at least one check'],
  ] as const;
  for (const [part, covered, what] of needs) {
    const reason = host.exempt[part];
    if (reason !== undefined && reason.trim().length < 10) {
      issues.push({ path: ['hosts', host.name, 'exempt', part], message: `an exemption needs a written reason (at least a sentence), got ${JSON.stringify(reason)}` });
    } else if (!covered && reason === undefined) {
      issues.push({ path: ['hosts', host.name], message: `host has no ${what}; add one (or an exemption with a reason in exempt.${part})` });
    }
  }
  if (host.monitoring && host.monitoring.checks.length > 0 && host.monitoring.routes.length === 0) {
    issues.push({ path: ['hosts', host.name, 'monitoring'], message: 'monitoring has checks but no alert route (monitoring.routes): nobody would be told' });
  }
}

function references(spec: FleetSpec, host: ResolvedHost, byName: ReadonlyMap<string, ResolvedHost>, issues: Issues): void {
  const b = host.backups;
  if (b && b.repositoryHost === undefined && b.repository.startsWith('sftp:') && !SFTP_REPOSITORY.test(b.repository)) {
    issues.push({ path: ['hosts', host.name, 'backups', 'repository', 'url'], message: `sftp repository ${JSON.stringify(b.repository)} is not of the form sftp:user@host:/absolute/path` });
  }
  if (b && b.repositoryHost === undefined && b.repository.startsWith('sftp:') && b.repositoryHostKey === undefined) {
    issues.push({
      path: ['hosts', host.name, 'backups', 'repository', 'url'],
      message: 'an sftp repository needs its server\'s ssh host key pinned (repository.hostKey: "ssh-ed25519 AAAA...", checked with the provider): without it every backup fails, as host keys are never trusted on first use',
    });
  }
  if (b?.repositoryHost !== undefined) {
    const target = byName.get(b.repositoryHost);
    const at: PolicyPath = ['hosts', host.name, 'backups', 'repository', 'host'];
    if (b.repositoryHost === host.name) issues.push({ path: at, message: `host backs up to itself: a backup on the host it protects is lost with it; choose another backup host or a repository URL` });
    else if (target && !target.roles.includes('backup')) issues.push({ path: at, message: `backup host "${target.name}" does not have the role "backup"` });
    if (host.name.length > MAX_BACKUP_CLIENT_NAME) issues.push({ path: at, message: `a host backing up to a fleet host needs a name of at most ${MAX_BACKUP_CLIENT_NAME} characters (its sftp user is restic-<name>)` });
  }
  for (const check of host.monitoring?.checks ?? []) {
    if (check.runsOn === host.name) continue;
    if (HOST_LOCAL_CHECKS.has(check.spec.kind)) {
      issues.push({ path: ['hosts', host.name, 'monitoring', 'checks', check.name, 'from'], message: `a ${check.spec.kind} check looks at the host's own hardware or state and cannot run from another host` });
      continue;
    }
    const runner = byName.get(check.runsOn);
    const at: PolicyPath = ['hosts', host.name, 'monitoring', 'checks', check.name, 'from'];
    if (!runner) issues.push({ path: at, message: `monitor host "${check.runsOn}" is not a host of this fleet` });
    else if (!runner.roles.includes('monitor')) issues.push({ path: at, message: `host "${check.runsOn}" runs checks for others but does not have the role "monitor"` });
  }
  const spec_ = spec.hosts[host.name];
  if ((spec_.address === undefined) === (spec_.provision === undefined)) {
    issues.push({ path: ['hosts', host.name], message: 'a host needs exactly one of address (an existing host) and provision (a host to create)' });
  }
  if (spec_.provision && !spec.provisioning) {
    issues.push({ path: ['hosts', host.name, 'provision'], message: 'provisioned hosts need a provisioning section (token, operator keys, admin networks) in the fleet' });
  }
}

/** Detection + alert delivery must fit the promised response time, for every check (check-timing.ts). */
function sla(host: ResolvedHost, issues: Issues): void {
  const m = host.monitoring;
  if (!m || m.routes.length === 0) return;
  const delivery = Math.max(...m.routes.map((r) => r.deliverySeconds));
  for (const check of m.checks) {
    const worst = responseTime(check.spec, check.intervalSeconds, m.failureThreshold, delivery);
    if (worst.seconds > m.slaSeconds) {
      issues.push({
        path: ['hosts', host.name, 'monitoring', 'checks', check.name],
        message: `SLA response time ${formatDuration(m.slaSeconds)} cannot be met: ${worst.terms.join(' + ')} = ${formatDuration(worst.seconds)}`,
      });
    }
  }
}

/** How far the security timer spreads a fleet's runs (its RandomizedDelaySec). */
export function securityCheckDelaySeconds(checkSeconds: number): number {
  return Math.min(checkSeconds / 4, 900);
}

/**
 * A security fix must pass staging and every production batch within the deadline. The terms are
 * the steps of `upkeep update security` (lib/apply/update-wave.ts): staging sees and installs the
 * fix within one check interval (plus the timer's random delay), each batch is gated, staging
 * soaks, production groups go in order with their soaks between them.
 */
function securityDeadline(fleet: ResolvedFleet, host: ResolvedHost, issues: Issues): void {
  const u = host.updates;
  if (!u) return;
  const detection = u.securityCheckSeconds + securityCheckDelaySeconds(u.securityCheckSeconds);
  let total = detection;
  const parts = [`detection ${formatDuration(detection)}`];
  const last = fleet.groups.findIndex((g) => g.name === host.group);
  for (const group of fleet.groups.slice(0, last + 1)) {
    const batches = Math.ceil(group.hosts.length / group.batchSize);
    total += batches * BATCH_ALLOWANCE_SECONDS;
    parts.push(`${group.name} ${batches} batch(es) x ${formatDuration(BATCH_ALLOWANCE_SECONDS)}`);
    if (group.name !== host.group) {
      total += group.soakSeconds;
      parts.push(`${group.name} soak ${formatDuration(group.soakSeconds)}`);
    }
  }
  if (total > u.securityDeadlineSeconds) {
    issues.push({
      path: ['hosts', host.name, 'updates', 'security', 'deadline'],
      message: `security deadline ${formatDuration(u.securityDeadlineSeconds)} cannot be met: ${parts.join(' + ')} = ${formatDuration(total)}`,
    });
  }
}

function describeWindow(w: ResolvedWindow): string {
  const hh = String(Math.floor(w.startMinute / 60)).padStart(2, '0');
  const mm = String(w.startMinute % 60).padStart(2, '0');
  const when = w.every === 'week' ? w.days.join(',') : `${w.nth === 'last' ? 'last' : `#${w.nth}`} ${w.days[0]} of the month`;
  return `${when} ${hh}:${mm} ${w.timeZone}`;
}

/**
 * The windows a group's hosts keep: the one they inherit (the group's or the defaults'), and each
 * one a host sets for itself, which is checked as a window of its own.
 */
function windowSources(spec: FleetSpec, fleet: ResolvedFleet, group: ResolvedGroup): { window: ResolvedWindow; host?: string }[] {
  const own: { window: ResolvedWindow; host: string }[] = [];
  let inherited: ResolvedWindow | undefined;
  for (const host of fleet.hosts) {
    if (host.group !== group.name || !host.updates) continue;
    if (spec.hosts[host.name]?.updates?.window !== undefined) own.push({ window: host.updates.window, host: host.name });
    else inherited ??= host.updates.window;
  }
  return [...(inherited ? [{ window: inherited }] : []), ...own];
}

/**
 * Staging must have its window, and its soak, before every production window opens: every staging
 * host's window before every production host's. A window a host sets for itself is reported at
 * that host (production first), an inherited one at the production group.
 */
function stagingWindows(spec: FleetSpec, fleet: ResolvedFleet, issues: Issues): void {
  const to = WINDOW_SAMPLE.from + WINDOW_SAMPLE.weeks * 7 * 86_400_000;
  // Hosts mostly share their windows: each pair is compared once.
  const verdicts = new Map<string, boolean>();
  const precedes = (sw: ResolvedWindow, soakSeconds: number, pw: ResolvedWindow): boolean => {
    const key = JSON.stringify([sw, soakSeconds, pw]);
    const known = verdicts.get(key);
    if (known !== undefined) return known;
    const stagingOpenings = windowOpenings(sw, WINDOW_SAMPLE.from - 62 * 86_400_000, to);
    const prodOpenings = windowOpenings(pw, WINDOW_SAMPLE.from, to);
    const ok = prodOpenings.every((p, i) => {
      const previous = i > 0 ? prodOpenings[i - 1] : -Infinity;
      const before = stagingOpenings.filter((s) => s > previous && s + (sw.durationSeconds + soakSeconds) * 1000 <= p);
      if (before.length === 0) return false;
      // Staging's window belongs before production's, not just after the one before: the
      // staging opening nearest to this production window must precede it.
      const after = stagingOpenings.find((s) => s >= p);
      return after === undefined || p - before[before.length - 1] < after - p;
    });
    verdicts.set(key, ok);
    return ok;
  };
  for (const staging of fleet.groups.filter((g) => g.staging)) {
    for (const s of windowSources(spec, fleet, staging)) {
      for (const prod of fleet.groups.filter((g) => !g.staging)) {
        for (const p of windowSources(spec, fleet, prod)) {
          if (precedes(s.window, staging.soakSeconds, p.window)) continue;
          const path: PolicyPath = p.host !== undefined ? ['hosts', p.host, 'updates', 'window'] : s.host !== undefined ? ['hosts', s.host, 'updates', 'window'] : ['groups', prod.name];
          const stagingSide = s.host === undefined ? `staging group "${staging.name}"` : `staging host "${s.host}" (group "${staging.name}")`;
          const prodSide = p.host === undefined ? `"${prod.name}"` : `host "${p.host}" (group "${prod.name}")`;
          issues.push({ path, message: `${stagingSide} must finish its window (${describeWindow(s.window)}) and soak before each window of ${prodSide} (${describeWindow(p.window)}) opens` });
        }
      }
    }
  }
}

function stagingFirst(fleet: ResolvedFleet, issues: Issues): void {
  if (fleet.groups.length > 0 && !fleet.groups.some((g) => g.staging)) {
    issues.push({ path: ['groups'], message: 'no staging group: mark the group that receives every change first with staging: true' });
  }
  for (const g of fleet.groups.filter((g) => g.staging)) {
    const waits = g.after.filter((a) => !fleet.groups.find((x) => x.name === a)?.staging);
    if (waits.length > 0) issues.push({ path: ['groups', g.name, 'after'], message: `a staging group cannot wait for production group(s) ${waits.join(', ')}` });
  }
  for (const g of fleet.groups) {
    if (g.hosts.length === 0) issues.push({ path: ['groups', g.name], message: 'group has no hosts' });
  }
}

function addresses(fleet: ResolvedFleet, issues: Issues): void {
  const seen = new Map<string, string>();
  for (const host of fleet.hosts) {
    if (host.address === undefined) continue;
    const key = `${host.address}:${host.port}`;
    const other = seen.get(key);
    if (other) issues.push({ path: ['hosts', host.name, 'address'], message: `address ${host.address} port ${host.port} is already used by host "${other}"` });
    else seen.set(key, host.name);
  }
}

/**
 * Each client's repository on a backup host is a directory of its own: a path equal to, inside or
 * around another client's would let the backup host hand one client's backups to the other.
 */
function repositoryPaths(fleet: ResolvedFleet, issues: Issues): void {
  const seen: { receiver: string; path: string; client: string }[] = [];
  for (const host of fleet.hosts) {
    const b = host.backups;
    if (b?.repositoryHost === undefined || b.repositoryPath === undefined) continue;
    const path = b.repositoryPath;
    const other = seen.find((s) => s.receiver === b.repositoryHost && (s.path === path || s.path.startsWith(`${path}/`) || path.startsWith(`${s.path}/`)));
    if (other) {
      const how = other.path === path ? 'is' : path.startsWith(`${other.path}/`) ? 'is inside' : 'contains';
      issues.push({ path: ['hosts', host.name, 'backups', 'repository', 'path'], message: `repository path ${path} ${how} the repository of "${other.client}" (${other.path}) on ${b.repositoryHost}: each client needs a directory of its own` });
    } else seen.push({ receiver: b.repositoryHost, path, client: host.name });
  }
}

/** Every issue with the fleet as a whole. An empty list means the fleet may be compiled. */
export function validateFleet(spec: FleetSpec, fleet: ResolvedFleet): PolicyIssue[] {
  const issues: Issues = [];
  const byName = new Map(fleet.hosts.map((h) => [h.name, h]));
  stagingFirst(fleet, issues);
  addresses(fleet, issues);
  repositoryPaths(fleet, issues);
  for (const host of fleet.hosts) {
    coverage(host, issues);
    references(spec, host, byName, issues);
    sla(host, issues);
    securityDeadline(fleet, host, issues);
  }
  stagingWindows(spec, fleet, issues);
  issues.push(...alertRouteIssues(spec));
  issues.push(...monitorHeartbeatIssues(fleet));
  issues.push(...secretIssues(spec));
  return issues;
}
