import { describe, expect, it } from 'vitest';
import { resolveFleet } from '../../lib/policy/resolve.ts';
import { editable } from '../fixtures/small-fleet.ts';

describe('resolveFleet', () => {
  it('orders groups staging first, then by `after`', () => {
    const spec = editable();
    spec.groups.canary = { after: ['staging'] };
    spec.groups.production.after = ['canary'];
    spec.hosts.canary1 = { group: 'canary', address: '192.0.2.50' };
    const { fleet, issues } = resolveFleet(spec);
    expect(issues).toEqual([]);
    expect(fleet.groups.map((g) => g.name)).toEqual(['staging', 'canary', 'production']);
    expect(fleet.groups[2].hosts).toEqual(['backup1', 'web1', 'web2']);
  });

  it('layers fleet -> group -> host: the group window wins over the default, the host over both', () => {
    const spec = editable();
    spec.hosts.web2.updates = { reboot: 'never' };
    const { fleet } = resolveFleet(spec);
    const host = (n: string) => fleet.hosts.find((h) => h.name === n)!;
    expect(host('stage1').updates!.window.days).toEqual(['sat']);
    expect(host('web1').updates!.window.days).toEqual(['sun']);
    expect(host('web1').updates!.reboot).toBe('when-needed');
    expect(host('web2').updates!.reboot).toBe('never');
    expect(host('web2').updates!.window.days).toEqual(['sun']);
  });

  it('fills documented defaults with exact values', () => {
    const { fleet } = resolveFleet(editable());
    const web1 = fleet.hosts.find((h) => h.name === 'web1')!;
    expect(web1.updates!.securityDeadlineSeconds).toBe(86400);
    expect(web1.backups!.retention).toEqual({ daily: 90, weekly: 0, monthly: 0, yearly: 0 });
    expect(web1.backups!.repository).toBe('rclone:restic-web1@backup1:/srv/restic/web1');
    expect(web1.monitoring!.slaSeconds).toBe(900);
    expect(web1.monitoring!.checks.map((c) => `${c.name}@${c.runsOn}/${c.intervalSeconds}`)).toEqual(['disk-usage@web1/60', 'failed-units@web1/60']);
  });

  it('removes a check by name with false and replaces one by name', () => {
    const spec = editable();
    spec.hosts.web1.monitoring = { checks: { 'disk-usage': false, 'failed-units': { kind: 'failed-units', interval: '30s' } } };
    const web1 = resolveFleet(spec).fleet.hosts.find((h) => h.name === 'web1')!;
    expect(web1.monitoring!.checks.map((c) => [c.name, c.intervalSeconds])).toEqual([['failed-units', 30]]);
  });

  it('reports a cycle in group order with the groups in it', () => {
    const spec = editable();
    spec.groups.staging.after = ['production'];
    const { issues } = resolveFleet(spec);
    expect(issues.map((i) => i.message)).toContainEqual(expect.stringMatching(/cycle: (production -> staging -> production|staging -> production -> staging)/));
  });

  it('drops an inherited policy for a part the host is exempt from', () => {
    const spec = editable();
    spec.hosts.backup1.exempt = { backups: 'Holds the repositories; provider snapshots cover it.' };
    const backup1 = resolveFleet(spec).fleet.hosts.find((h) => h.name === 'backup1')!;
    expect(backup1.backups).toBeUndefined();
  });
});
