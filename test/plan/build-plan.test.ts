import { describe, expect, it } from 'vitest';
import type { HostDesiredState } from '../../lib/compile/desired-state.ts';
import { buildPlan, hasChanges, type BaseHost } from '../../lib/plan/build-plan.ts';
import { plannedFile } from '../../lib/compile/generation.ts';
import { resolveFleet } from '../../lib/policy/resolve.ts';
import { smallFleet } from '../fixtures/small-fleet.ts';

const { fleet } = resolveFleet(smallFleet());
const metadata = { created_at: '2026-01-01T00:00:00Z', upkeep_version: 'test', policy: 'fleet.ts' };

function desired(files: HostDesiredState['files']): HostDesiredState[] {
  return fleet.hosts.map((h) => ({ host: h.name, files, units: ['upkeep-backup.timer'], packages: ['restic'] }));
}

const unit = { path: '/etc/systemd/system/upkeep-backup.timer', mode: '0644', owner: 'root:root', content: '[Timer]\nOnCalendar=daily\n' };
const secret = { path: '/etc/upkeep/restic/backup.password', mode: '0600', owner: 'root:root', secret: { env: 'RESTIC_PASSWORD' } };

describe('buildPlan', () => {
  it('plans every file as a creation when nothing is applied, and names the plan by its content', () => {
    const a = buildPlan({ fleet, hosts: desired([unit, secret]), base: new Map(), metadata });
    const b = buildPlan({ fleet, hosts: desired([unit, secret]), base: new Map(), metadata: { ...metadata, created_at: '2027-01-01T00:00:00Z' } });
    expect(a.document.summary).toEqual({ hostsChanged: 4, hostsUnchanged: 0, filesCreated: 8, filesUpdated: 0, filesDeleted: 0 });
    expect(a.document.plan_id).toBe(b.document.plan_id);
    expect(a.hostFiles.get('hosts/web1/etc/systemd/system/upkeep-backup.timer')).toBe(unit.content);
    expect([...a.hostFiles.keys()].some((k) => k.endsWith('backup.password'))).toBe(false);
  });

  it('shows an update with the fields that changed and a deletion, and nothing for an identical host', () => {
    const first = buildPlan({ fleet, hosts: desired([unit, secret]), base: new Map(), metadata }).document;
    const base = new Map<string, BaseHost>(Object.values(first.hosts).map((h) => [h.name, { generation: h.generation, files: h.files, units: h.units, packages: h.packages }]));
    const same = buildPlan({ fleet, hosts: desired([unit, secret]), base, metadata }).document;
    expect(Object.values(same.hosts).filter(hasChanges)).toEqual([]);

    const changed = buildPlan({ fleet, hosts: desired([{ ...unit, mode: '0640', content: '[Timer]\nOnCalendar=hourly\n' }]), base, metadata }).document;
    expect(changed.hosts.web1.changes.files).toEqual([
      { path: unit.path, action: 'update', fields: ['content', 'mode'] },
      { path: secret.path, action: 'delete' },
    ]);
    expect(changed.hosts.web1.baseGeneration).toBe(first.hosts.web1.generation);
  });

  it('does not call a secret file changed against a live base that only knows its hash, but does when its reference changes', () => {
    const live: BaseHost = { generation: 'g1', files: [plannedFile(unit), { path: secret.path, mode: '0600', owner: 'root:root', sha256: 'abc' }], units: ['upkeep-backup.timer'], packages: ['restic'] };
    const fromLive = buildPlan({ fleet, hosts: desired([unit, secret]), base: new Map([['web1', live]]), metadata }).document;
    expect(fromLive.hosts.web1.changes.files).toEqual([]);

    const fromPlan: BaseHost = { ...live, files: [plannedFile(unit), plannedFile(secret)] };
    const rotated = buildPlan({ fleet, hosts: desired([unit, { ...secret, secret: { env: 'RESTIC_PASSWORD_2027' } }]), base: new Map([['web1', fromPlan]]), metadata }).document;
    expect(rotated.hosts.web1.changes.files).toEqual([{ path: secret.path, action: 'update', fields: ['content'] }]);
  });

  it('plans drifted files back even when the generation is the same', () => {
    const first = buildPlan({ fleet, hosts: desired([unit]), base: new Map(), metadata }).document;
    const h = first.hosts.web1;
    const drifted: BaseHost = { generation: h.generation, files: [{ ...h.files[0], sha256: 'drifted' }], units: h.units, packages: h.packages };
    const again = buildPlan({ fleet, hosts: desired([unit]), base: new Map([['web1', drifted]]), metadata }).document;
    expect(hasChanges(again.hosts.web1)).toBe(true);
    expect(again.hosts.web1.changes.files).toEqual([{ path: unit.path, action: 'update', fields: ['content'] }]);
  });
});
