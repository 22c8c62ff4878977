// The maintenance promise a plan makes for each host, as plan.json records it: the parts of the
// resolved policy a customer was promised (update window and security deadline, backup retention,
// the checks and the alerting SLA, exemptions). Recorded so that a later plan can say, in words,
// what a change does to the promise (contract-diff.ts), whatever base it is compared against.

import { inKeyOrder } from '../compile/canonical-json.ts';
import type { ResolvedHost, ResolvedWindow } from '../policy/resolved.ts';

export interface ContractWindow {
  readonly every: 'week' | 'month';
  readonly days: readonly string[];
  readonly nth?: 1 | 2 | 3 | 4 | 'last';
  /** Minutes after local midnight. */
  readonly startMinute: number;
  readonly durationSeconds: number;
  readonly timeZone: string;
}

export interface ContractCheck {
  readonly kind: string;
  readonly intervalSeconds: number;
  /** The host the check runs on. */
  readonly runsOn: string;
}

export interface HostContract {
  readonly updates?: {
    readonly window: ContractWindow;
    readonly securityDeadlineSeconds: number;
    readonly reboot: 'never' | 'when-needed' | 'always';
  };
  readonly backups?: {
    readonly retention: { readonly daily: number; readonly weekly: number; readonly monthly: number; readonly yearly: number };
  };
  readonly monitoring?: {
    readonly slaSeconds: number;
    readonly failureThreshold: number;
    /** Checks about this host by name. */
    readonly checks: { readonly [name: string]: ContractCheck };
  };
  /** Parts the host is exempt from, with the written reason. */
  readonly exempt: { readonly updates?: string; readonly backups?: string; readonly monitoring?: string };
}

// Every object here is built with its keys in sorted order, as the rest of a plan: canonicalJson
// then serializes it as it is instead of copying it (the text is the same either way).

function contractWindow(w: ResolvedWindow): ContractWindow {
  return {
    days: w.days,
    durationSeconds: w.durationSeconds,
    every: w.every,
    ...(w.nth !== undefined && { nth: w.nth }),
    startMinute: w.startMinute,
    timeZone: w.timeZone,
  };
}

export function contractOf(host: ResolvedHost): HostContract {
  return {
    ...(host.backups && { backups: { retention: inKeyOrder(host.backups.retention) } }),
    exempt: inKeyOrder(host.exempt),
    ...(host.monitoring && {
      monitoring: {
        checks: inKeyOrder(Object.fromEntries(host.monitoring.checks.map((c): [string, ContractCheck] => [c.name, { intervalSeconds: c.intervalSeconds, kind: c.spec.kind, runsOn: c.runsOn }]))),
        failureThreshold: host.monitoring.failureThreshold,
        slaSeconds: host.monitoring.slaSeconds,
      },
    }),
    ...(host.updates && {
      updates: { reboot: host.updates.reboot, securityDeadlineSeconds: host.updates.securityDeadlineSeconds, window: contractWindow(host.updates.window) },
    }),
  };
}
