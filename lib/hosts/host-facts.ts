// What each host has recorded about keeping its maintenance contract, for `upkeep status`: one
// read-only run of lib/runtime/status-facts.sh per host (one ssh round trip, as `plan --live`).
// The script prints "KEY VALUE..." lines; a fact the host never recorded is absent here, and
// status reports it as unknown. This module is the only place that knows the line format.

import { readFileSync } from 'node:fs';
import type { PlanDocument } from '../plan/plan-format.ts';
import { planConnections, type PlanConnectionOptions } from './plan-connections.ts';
import { firstLine, lastLines, pMap, type Transport } from './transport.ts';

const FACTS_SCRIPT = readFileSync(new URL('../runtime/status-facts.sh', import.meta.url), 'utf8');

/** A status line a job wrote: "<epoch> <result> <detail>" (backup.sh). */
export interface JobRecord {
  readonly at: number;
  readonly result: string;
  /** Free text from the host: show it escaped only. */
  readonly detail: string;
}

export interface CheckRecord {
  /** The check's id, "<subject>-<name>" (its unit is upkeep-check-<id>). */
  readonly id: string;
  /** When it last ran. */
  readonly at: number;
  readonly severity: 'ok' | 'warning' | 'critical' | 'unknown';
  /** Since when it has been passing (ok) or failing (anything else); null when not recorded. */
  readonly since: number | null;
  readonly failures: number;
  readonly alerted: boolean;
  /** The check's last one-line message (host text: escape it). */
  readonly message: string | null;
}

export interface AlertRecord {
  readonly at: number;
  readonly checkId: string;
  readonly status: 'firing' | 'resolved';
}

export interface HostFacts {
  readonly host: string;
  /** The host's clock when it answered (seconds since the epoch). */
  readonly now: number;
  /** Committed generation; null: upkeep never applied here. */
  readonly generation: string | null;
  readonly planId: string | null;
  /** Last routine update run inside the maintenance window, and the window opening it belonged to. */
  readonly routineRun: { readonly at: number; readonly opening: string } | null;
  /** Security fixes pending and since when; null when none were pending at the last check. */
  readonly securityPending: { readonly since: number; readonly count: number } | null;
  /** /var/run/reboot-required and since when (its mtime). */
  readonly rebootRequired: number | null;
  /** The reboot-required check's first sighting of the pending reboot. */
  readonly rebootPendingSince: number | null;
  /** Last status of each backup.sh job that ran: backup, forget, check, drill. */
  readonly backups: { readonly [job: string]: JobRecord };
  /** Checks that run on this host, by id. */
  readonly checks: { readonly [id: string]: CheckRecord };
  /** Alerts that a route accepted, oldest first (the last 200). */
  readonly alerts: readonly AlertRecord[];
}

export type HostFactsResult = HostFacts | { readonly host: string; readonly error: string };

const SEVERITIES = new Set(['ok', 'warning', 'critical', 'unknown']);

function int(word: string | undefined): number | null {
  return word !== undefined && /^\d+$/.test(word) ? Number(word) : null;
}

/** Parses the facts script's output; unknown or damaged lines are ignored, not fatal. */
export function parseHostFacts(host: string, stdout: string): HostFacts {
  let now = 0;
  let generation: string | null = null;
  let planId: string | null = null;
  let routineRun: HostFacts['routineRun'] = null;
  let securityPending: HostFacts['securityPending'] = null;
  let rebootRequired: number | null = null;
  let rebootPendingSince: number | null = null;
  let version: string | undefined;
  const backups: Record<string, JobRecord> = {};
  const checks = new Map<string, CheckRecord>();
  const messages = new Map<string, string>();
  const alerts: AlertRecord[] = [];
  for (const line of stdout.split('\n')) {
    const words = line.split(' ');
    const [key, a, b, c] = words;
    const rest = (n: number) => words.slice(n).join(' ');
    switch (key) {
      case 'facts':
        version = a;
        break;
      case 'now':
        now = int(a) ?? 0;
        break;
      case 'generation':
        generation = a && a !== 'none' ? a : null;
        break;
      case 'plan':
        planId = a || null;
        break;
      case 'routine-run':
        if (int(a) !== null) routineRun = { at: int(a)!, opening: rest(2) };
        break;
      case 'security-pending':
        if (int(a) !== null && int(b) !== null) securityPending = { since: int(a)!, count: int(b)! };
        break;
      case 'reboot-required':
        rebootRequired = int(a);
        break;
      case 'reboot-pending-since':
        rebootPendingSince = int(a);
        break;
      case 'backup':
        if (a && int(b) !== null && c) backups[a] = { at: int(b)!, result: c, detail: rest(4) };
        break;
      case 'check': {
        const [, id, at, severity, since, failures, alerted] = words;
        if (!id || int(at) === null) break;
        checks.set(id, {
          id,
          at: int(at)!,
          severity: (SEVERITIES.has(severity ?? '') ? severity : 'unknown') as CheckRecord['severity'],
          since: int(since),
          failures: int(failures) ?? 0,
          alerted: alerted === '1',
          message: null,
        });
        break;
      }
      case 'check-message':
        if (a) messages.set(a, rest(2));
        break;
      case 'alert':
        if (int(a) !== null && b && (c === 'firing' || c === 'resolved')) alerts.push({ at: int(a)!, checkId: b, status: c });
        break;
      default:
        break;
    }
  }
  if (version !== '1') throw new Error(`${host}: the status facts script answered no "facts 1" line: ${JSON.stringify(stdout.slice(0, 200))}`);
  return {
    host,
    now,
    generation,
    planId,
    routineRun,
    securityPending,
    rebootRequired,
    rebootPendingSince,
    backups,
    checks: Object.fromEntries([...checks].map(([id, check]) => [id, { ...check, message: messages.get(id) ?? null }])),
    alerts,
  };
}

/** One round trip to one host. */
export async function readHostFacts(t: Transport): Promise<HostFacts> {
  const result = await t.run(FACTS_SCRIPT, undefined, { timeoutMs: 60_000 });
  if (result.exitCode !== 0) throw new Error(`${t.host}: the status facts script exited ${result.exitCode}: ${lastLines(result.stderr, 3)}`);
  return parseHostFacts(t.host, result.stdout);
}

/** One round trip per host, `parallel` at a time; an unreachable host is reported, not thrown. */
export async function readFleetFacts(hosts: readonly string[], transport: (host: string) => Transport, parallel = 8): Promise<Record<string, HostFactsResult>> {
  const results = await pMap([...hosts].sort(), parallel, async (host): Promise<HostFactsResult> => {
    try {
      return await readHostFacts(transport(host));
    } catch (error) {
      return { host, error: firstLine(error) };
    }
  });
  return Object.fromEntries(results.map((r) => [r.host, r]));
}

/**
 * Reads the facts of every host of `plan` over ssh, pinned as bin/apply and `plan --live` pin
 * them (policy keys, Terraform outputs, upkeep-host-keys.json beside the policy).
 */
export async function readPlanFacts(plan: PlanDocument, options: PlanConnectionOptions): Promise<Record<string, HostFactsResult>> {
  const connections = planConnections(plan, options);
  try {
    // A host without an address yet (not provisioned) is reported as unreachable by connect().
    return await readFleetFacts(Object.keys(plan.hosts), (host) => connections.connect(host));
  } finally {
    await connections.close();
  }
}
