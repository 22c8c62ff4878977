// The contract diff: what a change does to the maintenance promise, in words, per host, before ->
// after; weakening changes under a warning, strengthening ones apart.

import { describe, expect, it } from 'vitest';
import { contractOf } from '../../lib/plan/contract.ts';
import { diffContracts, renderContractSection } from '../../lib/plan/contract-diff.ts';
import { prepareFleet } from '../../lib/policy/prepare.ts';
import type { FleetSpec } from '../../lib/policy/model.ts';
import { editable, smallFleet } from '../fixtures/small-fleet.ts';

function contracts(spec: FleetSpec) {
  return Object.fromEntries(prepareFleet(spec).hosts.map((h) => [h.name, { name: h.name, contract: contractOf(h) }]));
}

describe('the contract diff', () => {
  const base = contracts(smallFleet());

  it('finds nothing when the promise is unchanged', () => {
    expect(diffContracts(base, contracts(smallFleet()))).toEqual([]);
    expect(renderContractSection([])).toBeUndefined();
  });

  it('says in words how a change weakens the promise, per host, before -> after', () => {
    const spec = editable();
    spec.defaults.backups.retention = { daily: 30 };
    spec.defaults.monitoring.sla = '30m';
    spec.defaults.updates.window.start = '03:00';
    spec.groups.staging.updates.window.duration = '4h';
    spec.groups.staging.updates.security = { deadline: '72h' };
    spec.hosts.web1.monitoring = { checks: { 'failed-units': false } };
    spec.hosts.web2.exempt = { monitoring: 'moved to the customer monitoring in 2027' };
    spec.hosts.web2.monitoring = { checks: { 'disk-usage': false, 'failed-units': false } };
    const changes = diffContracts(base, contracts(spec));
    expect(changes.every((c) => c.weakens)).toBe(true);
    const text = renderContractSection(changes)!;
    expect(text).toContain('> **WARNING: this change WEAKENS the maintenance promise on 4 host(s).**');
    const line = (what: string) => text.split('\n').find((l) => l.startsWith(`- **${what}**`));
    expect(line('backup retention shortened')).toBe('- **backup retention shortened** on 4 hosts (backup1, stage1, web1, web2): 90 daily, 0 weekly, 0 monthly, 0 yearly → 30 daily, 0 weekly, 0 monthly, 0 yearly');
    expect(line('maintenance window moved')).toMatch(/^- \*\*maintenance window moved\*\* on 3 hosts \(backup1, web1, web2\): weekly sun 02:00 for 2h .* → weekly sun 03:00 for 2h /);
    expect(line('maintenance window widened')).toMatch(/ on stage1: weekly sat 02:00 for 2h .* → weekly sat 02:00 for 4h /);
    expect(line('security update deadline lengthened')).toBe('- **security update deadline lengthened** on stage1: 1d → 3d');
    expect(line('check failed-units removed')).toBe('- **check failed-units removed** on web1: failed-units every 1m → no check');
    expect(line('alert response time &#40;SLA&#41; loosened')).toBe('- **alert response time &#40;SLA&#41; loosened** on 3 hosts (backup1, stage1, web1): 15m → 30m');
    expect(line('newly exempt from monitoring')).toBe('- **newly exempt from monitoring** on web2: not exempt → exempt: "moved to the customer monitoring in 2027"');
    expect(line('dropped from monitoring')).toBe('- **dropped from monitoring** on web2: 2 check&#40;s&#41; → no checks');
    expect(text).not.toContain('Strengthened');
  });

  it('lists strengthening changes apart, after the warning, and a host that left the fleet as a weakening', () => {
    const spec = editable();
    spec.defaults.backups.retention = { daily: 90, monthly: 12 };
    spec.defaults.monitoring.checks['failed-units'] = { kind: 'failed-units', interval: '5m' };
    spec.hosts.web1.monitoring = { checks: { 'reboot-required': { kind: 'reboot-required' } } };
    spec.defaults.updates.window.duration = '1h';
    delete spec.hosts.web2;
    spec.hosts.web3 = { group: 'production', roles: ['web'], address: '192.0.2.4' };
    const changes = diffContracts(base, contracts(spec));
    const text = renderContractSection(changes)!;
    const [warning, strengthened] = text.split('Strengthened or added:');
    expect(warning).toContain('> **WARNING: this change WEAKENS the maintenance promise on 4 host(s).**');
    expect(warning).toContain('- **removed from the fleet: no longer updated, backed up or monitored by upkeep** on web2: maintained → not maintained');
    expect(warning).toContain('- **check failed-units runs less often** on 3 hosts (backup1, stage1, web1): every 1m → every 5m');
    expect(strengthened).toContain('- **backup retention lengthened** on 3 hosts (backup1, stage1, web1): 90 daily, 0 weekly, 0 monthly, 0 yearly → 90 daily, 0 weekly, 12 monthly, 0 yearly');
    expect(strengthened).toContain('- **check reboot-required added** on web1: no check → reboot-required every 1m');
    expect(strengthened).toContain('- **maintenance window narrowed** on 2 hosts (backup1, web1)');
    expect(strengthened).toContain('- **added to the fleet** on web3: not maintained → maintained');
  });

  it('escapes what comes from the policy: a reason cannot add markup or mention anyone', () => {
    const spec = editable();
    spec.hosts.web2.exempt = { monitoring: 'see </details><img src=x> [x](http://evil.example/) @octocat `c`' };
    spec.hosts.web2.monitoring = { checks: { 'disk-usage': false, 'failed-units': false } };
    const text = renderContractSection(diffContracts(base, contracts(spec)))!;
    expect(text).not.toMatch(/<\/?(details|img)|\]\(|@(?!&#8203;)|`/);
    expect(text).toContain('&#60;/details&#62;');
  });

  it('names at most 10 hosts per line when compact, keeping every distinct change', () => {
    const many = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`h${i}`, { name: `h${i}`, contract: base.web1!.contract }]));
    const fewer = structuredClone(many);
    for (const h of Object.values(fewer)) (h.contract as { backups: unknown }).backups = { retention: { daily: 7, weekly: 0, monthly: 0, yearly: 0 } };
    fewer.h3!.contract = { ...fewer.h3!.contract, exempt: { backups: 'decommissioned next week' } };
    const text = renderContractSection(diffContracts(many, fewer), true)!;
    expect(text).toContain('on 50 hosts (h0, h1, h10, h11, h12, h13, h14, h15, h16, h17 and 40 more): 90 daily');
    expect(text).toContain('- **newly exempt from backups** on h3');
  });
});
