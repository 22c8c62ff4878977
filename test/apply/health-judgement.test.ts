// The health gate's verdict: a host is judged against its own state just before the change. The
// fleet tests (test/contract) show it on real hosts; these pin the rule for every severity.

import { describe, expect, it } from 'vitest';
import { judgeHealth } from '../../lib/apply/health-judgement.ts';
import type { CheckResult, CheckSeverity, HealthReport } from '../../lib/hosts/host-agent.ts';

const RESULT: Record<CheckSeverity, string> = { ok: 'success 0', warning: 'success 1', critical: 'success 2', unknown: 'success 3', failed: 'exit-code 4', missing: 'missing', never: 'never' };

function check(unit: string, severity: CheckSeverity): CheckResult {
  return { unit, severity, ok: severity === 'ok' || severity === 'warning', result: RESULT[severity] };
}

function report(checks: CheckResult[], extra: Partial<HealthReport> = {}): HealthReport {
  return { host: 'stage1', ok: true, checks, systemState: 'running', failedUnits: [], inactiveTimers: [], problems: [], ...extra };
}

const HTTP = 'upkeep-check-stage1-http.service';
const DISK = 'upkeep-check-stage1-disk-usage.service';

describe('judging a host after a change', () => {
  it('blames CRITICAL and UNKNOWN checks and a check unit that could not run; passes OK and reports WARNING', () => {
    const verdict = judgeHealth(report([check(DISK, 'ok'), check('a.service', 'warning'), check('b.service', 'critical'), check('c.service', 'unknown'), check('d.service', 'failed')]), undefined);
    expect(verdict.blamed).toEqual(['check b.service is CRITICAL (success 2)', 'check c.service is UNKNOWN (success 3)', 'check d.service failed (exit-code 4)']);
    expect(verdict.reported).toEqual(['check a.service is WARNING (success 1)']);
  });

  it('reports, and does not blame, a check and a unit that were already failing just before the change', () => {
    const after = report([check(DISK, 'critical'), check(HTTP, 'critical')], { systemState: 'degraded', failedUnits: ['legacy-sync.service', 'new-thing.service'] });
    const before = { host: 'stage1', checks: [check(DISK, 'critical'), check(HTTP, 'ok')], failedUnits: ['legacy-sync.service'] };
    const verdict = judgeHealth(after, before);
    expect(verdict.blamed).toEqual([`check ${HTTP} is CRITICAL (success 2)`, 'units failed after the change: new-thing.service']);
    expect(verdict.reported).toEqual([`check ${DISK} is CRITICAL (success 2), as it already was before the change`, 'units already failed before the change: legacy-sync.service']);
  });

  it('passes a degraded host whose only failed unit was failed before', () => {
    const verdict = judgeHealth(report([check(DISK, 'ok')], { systemState: 'degraded', failedUnits: ['legacy-sync.service'] }), { host: 'stage1', checks: [], failedUnits: ['legacy-sync.service'] });
    expect(verdict.blamed).toEqual([]);
  });

  it('blames a check that was new or never ran before the change, and an inactive timer', () => {
    const verdict = judgeHealth(report([check(HTTP, 'critical'), check(DISK, 'unknown')], { inactiveTimers: ['upkeep-backup.timer'] }), { host: 'stage1', checks: [check(HTTP, 'missing'), check(DISK, 'never')], failedUnits: [] });
    expect(verdict.blamed).toEqual([`check ${HTTP} is CRITICAL (success 2)`, `check ${DISK} is UNKNOWN (success 3)`, 'timer upkeep-backup.timer is not active']);
  });

  it('runs the checks that watch the host from a monitor: blames them when they fail, reports one not installed there yet', () => {
    const verdict = judgeHealth(report([check(DISK, 'ok')]), { host: 'stage1', checks: [], failedUnits: [] }, [
      { runner: 'monitor1', after: check(HTTP, 'critical'), before: check(HTTP, 'ok') },
      { runner: 'monitor1', after: check('upkeep-check-stage1-tls-expiry.service', 'missing') },
    ]);
    expect(verdict.blamed).toEqual([`check ${HTTP} on monitor1 is CRITICAL (success 2)`]);
    expect(verdict.reported).toEqual(['check upkeep-check-stage1-tls-expiry.service is not on monitor1 yet: it watches this host once monitor1 has its new generation']);
  });
});
