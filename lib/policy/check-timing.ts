// How long a check takes to notice a fault and have someone told: the terms of the SLA arithmetic
// (validate.ts), and how long a check may stay silent before it counts as stopped (the monitor
// heartbeat, lib/compile/monitoring.ts) or how long an alert sent to Alertmanager must last.
//
// A check's runs never overlap (systemd starts a oneshot service that is still running only once),
// and its timer is monotonic: a run starts one interval after the previous one started, or as soon
// as it ended when it took longer. So a check whose failing run lasts longer than its interval
// (a mail-delivery check waits up to maxDelay) notices N failures in N of those runs, not in N
// intervals.

import { formatDuration as format, tryParseDuration } from './duration.ts';
import type { Check, CheckKind } from './model.ts';

/**
 * The longest a run of each kind takes by its probe's own timeouts (lib/runtime/check-<kind>.sh:
 * curl --max-time, dig +time x +tries, the TLS handshake's timeout); 0 for the checks that read
 * this host's own state and wait on no server. test/policy/check-timing.test.ts reads the
 * timeouts from the programs.
 */
export const PROBE_TIMEOUT_SECONDS: Readonly<Record<Exclude<CheckKind, 'mail-delivery'>, number>> = {
  http: 30,
  smtp: 30,
  dns: 10,
  'tls-expiry': 20,
  'monitor-heartbeat': 10,
  smart: 0,
  'cpu-temperature': 0,
  'disk-usage': 0,
  'failed-units': 0,
  'backup-freshness': 0,
  'security-updates': 0,
  'reboot-required': 0,
};

/**
 * A mail-delivery run ends at its maximum delay (check-mail-delivery.sh cuts the send and every
 * search short there); this much more is allowed for the program around them.
 */
export const MAIL_RUN_OVERHEAD_SECONDS = 5;

function seconds(text: string | undefined, fallback: string): number {
  return tryParseDuration(text ?? fallback) ?? tryParseDuration(fallback)!;
}

/** How long the check's mail-delivery probe waits for its mail (its maxDelay), else 0. */
export function deliveryWaitSeconds(spec: Check<string>): number {
  return spec.kind === 'mail-delivery' ? seconds(spec.maxDelay, '5m') : 0;
}

/** The longest one run of the check takes (a failing one: the probe waits for its timeouts). */
export function longestRunSeconds(spec: Check<string>): number {
  return spec.kind === 'mail-delivery' ? deliveryWaitSeconds(spec) + MAIL_RUN_OVERHEAD_SECONDS : PROBE_TIMEOUT_SECONDS[spec.kind];
}

/**
 * The longest time between the ends of two runs, when each may send an alert: a run starts at most
 * one interval after the previous one started, and takes at most its longest run.
 */
export function runPeriodSeconds(spec: Check<string>, intervalSeconds: number): number {
  return intervalSeconds + longestRunSeconds(spec);
}

/** How long after the fault the check can begin to fail: a monitor-heartbeat check gives the monitor its maxAge. */
export function graceSeconds(spec: Check<string>): number {
  return spec.kind === 'monitor-heartbeat' ? seconds(spec.maxAge, '5m') : 0;
}

export interface ResponseTime {
  readonly seconds: number;
  /** The terms, as the SLA message shows them. */
  readonly terms: readonly string[];
}

/**
 * The longest time from a fault to the alert reaching a human, for one check:
 *   grace (monitor-heartbeat: maxAge)
 * + the first failing run: it starts within one interval of the fault
 * + the other (threshold - 1) failing runs, each starting an interval after the one before, or
 *   when it ended if it took longer
 * + the last failing run's own length (the probe's timeouts; a mail-delivery check's maxDelay)
 * + the route's delivery time.
 * It is the promise for a route that takes the notice: one that does not is sent it again at the
 * start of each run after, and its check's unit fails meanwhile (run-check.sh), so that is seen.
 */
export function responseTime(spec: Check<string>, intervalSeconds: number, failureThreshold: number, deliverySeconds: number): ResponseTime {
  const grace = graceSeconds(spec);
  const run = longestRunSeconds(spec);
  const wait = deliveryWaitSeconds(spec);
  const runText = wait > 0 ? `longest run ${format(run)} (delivery wait ${format(wait)} + ${format(run - wait)})` : `longest run ${format(run)}`;
  const terms = [
    ...(grace > 0 ? [`monitor heartbeat max age ${format(grace)}`] : []),
    ...(run <= intervalSeconds
      ? [`check interval ${format(intervalSeconds)} x failure threshold ${failureThreshold}`, ...(run > 0 ? [runText] : [])]
      : [`check interval ${format(intervalSeconds)}`, `failure threshold ${failureThreshold} x ${runText} (runs never overlap)`]),
    `alert delivery ${format(deliverySeconds)}`,
  ];
  const total = grace + intervalSeconds + (failureThreshold - 1) * Math.max(intervalSeconds, run) + run + deliverySeconds;
  return { seconds: total, terms };
}
