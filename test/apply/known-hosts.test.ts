// The known_hosts bin/apply pins hosts with, from the YAML example's plan: its host keys carry a
// comment ("ssh-ed25519 AAAA... web1"), which the schema accepts and ssh-keygen writes.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compileFleet } from '../../lib/compile/fleet.ts';
import { buildInventory, InventoryError, knownHostsLines, writeKnownHosts } from '../../lib/hosts/inventory.ts';
import { buildPlan } from '../../lib/plan/build-plan.ts';
import { loadPolicy } from '../../lib/policy/load.ts';
import { prepareFleet } from '../../lib/policy/prepare.ts';
import { programsAvailable } from '../programs.ts';

const root = join(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'upkeep-known-hosts-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function yamlExamplePlan() {
  const { spec, source } = await loadPolicy(join(root, 'examples', 'yaml', 'fleet.yaml'));
  const fleet = prepareFleet(spec, source);
  const compiled = compileFleet(fleet);
  return buildPlan({ fleet, hosts: compiled.hosts, base: new Map(), policy: 'examples/yaml/fleet.yaml', metadata: { created_at: '2026-01-01T00:00:00Z', upkeep_version: 'test' } }).document;
}

describe('known_hosts for the YAML example (host keys with comments)', () => {
  it('has one "address type base64" line per host, the comment dropped', async () => {
    const plan = await yamlExamplePlan();
    const hosts = Object.values(plan.hosts);
    expect(hosts).toHaveLength(5);
    expect(hosts.map((h) => h.hostKey!.split(' ')[2])).toEqual(hosts.map((h) => h.name)); // the comments
    const file = join(work, 'known_hosts');
    writeKnownHosts(buildInventory(plan), file);
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    expect(lines).toHaveLength(hosts.length);
    for (const host of hosts) {
      const [type, key] = host.hostKey!.split(' ');
      expect(lines).toContain(`${host.port === 22 ? host.address : `[${host.address}]:${host.port}`} ${type} ${key}`);
    }
    for (const line of lines) expect(line).toMatch(/^\S+ ssh-ed25519 [A-Za-z0-9+/]+={0,3}$/);
  });

  it.skipIf(!programsAvailable('test/apply/known-hosts.test.ts (ssh-keygen -F)', ['ssh-keygen']))('is read by ssh: ssh-keygen -F finds every host', async () => {
    const plan = await yamlExamplePlan();
    const file = join(work, 'known_hosts-ssh');
    writeKnownHosts(buildInventory(plan), file);
    for (const host of Object.values(plan.hosts)) {
      const name = host.port === 22 ? host.address! : `[${host.address}]:${host.port}`;
      const found = spawnSync('ssh-keygen', ['-F', name, '-f', file], { encoding: 'utf8' });
      expect(found.status, `${host.name}: ${found.stderr}`).toBe(0);
      expect(found.stdout).toContain(host.hostKey!.split(' ')[1]);
    }
  });

  it('refuses a key line with a control character or a second line in its comment', async () => {
    const plan = await yamlExamplePlan();
    const stage1 = plan.hosts.stage1!;
    const [type, key] = stage1.hostKey!.split(' ');
    for (const forged of [`${type} ${key} stage1\n* ${type} ${key}`, `${type} ${key} a\u0007b`, `${type} ${key}\rx`]) {
      const doc = { ...plan, hosts: { ...plan.hosts, stage1: { ...stage1, hostKey: forged } } };
      expect(() => buildInventory(doc)).toThrow(InventoryError);
      expect(() => knownHostsLines({ stage1: { name: 'stage1', address: stage1.address!, port: 22, hostKey: forged } })).toThrow(InventoryError);
    }
  });
});
