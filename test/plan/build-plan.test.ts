import { describe, expect, it } from 'vitest';
import type { HostDesiredState } from '../../lib/compile/desired-state.ts';
import { buildPlan, hasChanges, planIdOf, withInfraDiff, type BaseHost } from '../../lib/plan/build-plan.ts';
import { plannedFile, sha256 } from '../../lib/compile/generation.ts';
import { resolveFleet } from '../../lib/policy/resolve.ts';
import { smallFleet } from '../fixtures/small-fleet.ts';

const { fleet } = resolveFleet(smallFleet());
const metadata = { created_at: '2026-01-01T00:00:00Z', upkeep_version: 'test' };
const policy = 'fleet.ts';

function desired(files: HostDesiredState['files']): HostDesiredState[] {
  return fleet.hosts.map((h) => ({ host: h.name, files, units: ['upkeep-backup.timer'], packages: ['restic'] }));
}

const unit = { path: '/etc/systemd/system/upkeep-backup.timer', mode: '0644', owner: 'root:root', content: '[Timer]\nOnCalendar=daily\n' };
const secret = { path: '/etc/upkeep/restic/backup.password', mode: '0600', owner: 'root:root', secret: { env: 'RESTIC_PASSWORD' } };

describe('buildPlan', () => {
  it('names in plan_id everything bin/apply uses: the policy path, the terraform/ files and the infrastructure diff shown', () => {
    const NO_CHANGES = { add: [], change: [], replace: [], destroy: [] };
    const stack = { 'main.tf.json': '{"resource":{}}\n' };
    const id = (input: Partial<Parameters<typeof buildPlan>[0]>) =>
      buildPlan({ fleet, hosts: desired([unit]), base: new Map(), policy, metadata, infrastructure: { files: stack, diff: NO_CHANGES, source: 'offline' }, ...input }).document.plan_id;
    const reviewed = id({});
    expect(id({ policy: '../elsewhere/fleet.ts' })).not.toBe(reviewed);
    expect(id({ infrastructure: { files: { 'main.tf.json': '{"resource":{"terraform_data":{}}}\n' }, diff: NO_CHANGES, source: 'offline' } })).not.toBe(reviewed);
    expect(id({ infrastructure: { files: stack, diff: { ...NO_CHANGES, destroy: ['hcloud_server.web1'] }, source: 'offline' } })).not.toBe(reviewed);
    const plan = buildPlan({ fleet, hosts: desired([unit]), base: new Map(), policy, metadata, infrastructure: { files: stack, diff: NO_CHANGES, source: 'offline' } }).document;
    const engine = withInfraDiff(plan, { ...NO_CHANGES, replace: ['hcloud_server.web1'] }, 'engine');
    expect(engine.plan_id).toBe(planIdOf(engine));
    expect(engine.plan_id).not.toBe(plan.plan_id);
    expect(plan.infrastructure?.stack).toEqual({ 'main.tf.json': sha256(stack['main.tf.json']) });
  });

  it('plans every file as a creation when nothing is applied, and names the plan by its content', () => {
    const a = buildPlan({ fleet, hosts: desired([unit, secret]), base: new Map(), policy, metadata });
    const b = buildPlan({ fleet, hosts: desired([unit, secret]), base: new Map(), policy, metadata: { ...metadata, created_at: '2027-01-01T00:00:00Z' } });
    expect(a.document.summary).toEqual({ hostsChanged: 4, hostsUnchanged: 0, filesCreated: 8, filesUpdated: 0, filesDeleted: 0 });
    expect(a.document.plan_id).toBe(b.document.plan_id);
    expect(a.objects.get(sha256(unit.content!))).toBe(unit.content);
    // One object for the unit all four hosts share; none for the secret, whose value the plan never has.
    expect([...a.objects.keys()]).toEqual([sha256(unit.content!)]);
  });

  it('shows an update with the fields that changed and a deletion, and nothing for an identical host', () => {
    const first = buildPlan({ fleet, hosts: desired([unit, secret]), base: new Map(), policy, metadata }).document;
    const base = new Map<string, BaseHost>(Object.values(first.hosts).map((h) => [h.name, { generation: h.generation, files: h.files, units: h.units, packages: h.packages }]));
    const same = buildPlan({ fleet, hosts: desired([unit, secret]), base, policy, metadata }).document;
    expect(Object.values(same.hosts).filter(hasChanges)).toEqual([]);

    const changed = buildPlan({ fleet, hosts: desired([{ ...unit, mode: '0640', content: '[Timer]\nOnCalendar=hourly\n' }]), base, policy, metadata }).document;
    expect(changed.hosts.web1.changes.files).toEqual([
      { path: unit.path, action: 'update', fields: ['content', 'mode'] },
      { path: secret.path, action: 'delete' },
    ]);
    expect(changed.hosts.web1.baseGeneration).toBe(first.hosts.web1.generation);
  });

  it('does not call a secret file changed against a live base that only knows its hash, but does when its reference changes', () => {
    const live: BaseHost = { generation: 'g1', files: [plannedFile(unit), { path: secret.path, mode: '0600', owner: 'root:root', sha256: 'abc' }], units: ['upkeep-backup.timer'], packages: ['restic'] };
    const fromLive = buildPlan({ fleet, hosts: desired([unit, secret]), base: new Map([['web1', live]]), policy, metadata }).document;
    expect(fromLive.hosts.web1.changes.files).toEqual([]);

    const fromPlan: BaseHost = { ...live, files: [plannedFile(unit), plannedFile(secret)] };
    const rotated = buildPlan({ fleet, hosts: desired([unit, { ...secret, secret: { env: 'RESTIC_PASSWORD_2027' } }]), base: new Map([['web1', fromPlan]]), policy, metadata }).document;
    expect(rotated.hosts.web1.changes.files).toEqual([{ path: secret.path, action: 'update', fields: ['content'] }]);
  });

  it('plans drifted files back even when the generation is the same', () => {
    const first = buildPlan({ fleet, hosts: desired([unit]), base: new Map(), policy, metadata }).document;
    const h = first.hosts.web1;
    const drifted: BaseHost = { generation: h.generation, files: [{ ...h.files[0], sha256: 'drifted' }], units: h.units, packages: h.packages };
    const again = buildPlan({ fleet, hosts: desired([unit]), base: new Map([['web1', drifted]]), policy, metadata }).document;
    expect(hasChanges(again.hosts.web1)).toBe(true);
    expect(again.hosts.web1.changes.files).toEqual([{ path: unit.path, action: 'update', fields: ['content'] }]);
  });
});
