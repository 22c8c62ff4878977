// The health gate's verdict on one host: what the change broke is blamed on it (the host fails its
// gate and goes back); what was already failing just before the change is reported, not blamed,
// so a unit that broke last week does not roll back a good change (nor, beyond a wave's failure
// budget, every host of its wave).
//
// The rule for severities (README, "What a check's severity means"): OK passes; WARNING passes and
// is reported; CRITICAL and UNKNOWN fail, as does a check unit that could not run at all. UNKNOWN
// fails because the change may be what blinded the check; checks that can only ever be UNKNOWN on a
// host (SMART on a virtual machine) are not compiled for it in the first place.

import type { CheckResult, HealthBefore, HealthReport } from '../hosts/host-agent.ts';

export interface HealthVerdict {
  /** Problems the change caused: the host fails its gate. */
  readonly blamed: readonly string[];
  /** Worth knowing, not the change's doing: warnings, and what already failed before it. */
  readonly reported: readonly string[];
}

/** A check as it ran on `runner` after the change, and its last result there before. */
export interface RemoteCheckRun {
  readonly runner: string;
  readonly after: CheckResult;
  readonly before?: CheckResult;
}

/** Whether a result says the check was failing (not: missing, never run, OK or WARNING). */
function failing(result: CheckResult | undefined): boolean {
  return result !== undefined && !result.ok && result.severity !== 'missing' && result.severity !== 'never';
}

function describe(check: CheckResult, where?: string): string {
  const on = where === undefined ? '' : ` on ${where}`;
  return check.severity === 'failed' ? `check ${check.unit}${on} failed (${check.result})` : `check ${check.unit}${on} is ${check.severity.toUpperCase()} (${check.result})`;
}

function judgeCheck(after: CheckResult, before: CheckResult | undefined, where: string | undefined, blamed: string[], reported: string[]): void {
  if (after.severity === 'missing' && where !== undefined) {
    reported.push(`check ${after.unit} is not on ${where} yet: it watches this host once ${where} has its new generation`);
    return;
  }
  if (after.ok) {
    if (after.severity === 'warning') reported.push(describe(after, where));
    return;
  }
  if (failing(before)) reported.push(`${describe(after, where)}, as it already was before the change`);
  else blamed.push(describe(after, where));
}

/** Judges a host's health after a change against its own state just before it. */
export function judgeHealth(after: HealthReport, before: HealthBefore | undefined, remote: readonly RemoteCheckRun[] = []): HealthVerdict {
  const blamed: string[] = [];
  const reported: string[] = [];
  for (const check of after.checks) judgeCheck(check, before?.checks.find((c) => c.unit === check.unit), undefined, blamed, reported);
  for (const run of remote) judgeCheck(run.after, run.before, run.runner, blamed, reported);
  const failedBefore = new Set(before?.failedUnits ?? []);
  // Check units report through their checks above.
  const checkUnits = new Set(after.checks.map((c) => c.unit));
  const newlyFailed = after.failedUnits.filter((u) => !failedBefore.has(u) && !checkUnits.has(u));
  const stillFailed = after.failedUnits.filter((u) => failedBefore.has(u));
  if (newlyFailed.length > 0) blamed.push(`units failed after the change: ${newlyFailed.join(', ')}`);
  if (stillFailed.length > 0) reported.push(`units already failed before the change: ${stillFailed.join(', ')}`);
  // "degraded" is the failed units above; any other state than running is the change's to explain.
  if (after.systemState !== 'running' && !(after.systemState === 'degraded' && after.failedUnits.length > 0)) blamed.push(`system is ${after.systemState}`);
  for (const timer of after.inactiveTimers) blamed.push(`timer ${timer} is not active`);
  return { blamed, reported };
}
