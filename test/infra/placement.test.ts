import { describe, expect, it } from 'vitest';
import { STACK_FILE, synthesizeInfra } from '../../lib/compile/infra.ts';
import { prepareFleet } from '../../lib/policy/prepare.ts';
import { generatedFleet } from '../fixtures/generated-fleet.ts';

describe('spread placement groups', () => {
  it('split a role of more than 10 hosts into groups of at most 10, in name order', () => {
    const fleet = prepareFleet(generatedFleet(25));
    const stack = JSON.parse(synthesizeInfra(fleet, Object.fromEntries(fleet.hosts.map((h) => [h.name, 'g'])))![STACK_FILE]);
    const groups = stack.resource.hcloud_placement_group as Record<string, { name: string }>;
    const members = new Map<string, string[]>();
    for (const [name, server] of Object.entries(stack.resource.hcloud_server as Record<string, { placement_group_id: string }>)) {
      const group = /hcloud_placement_group\.([^.]+)\.id/.exec(server.placement_group_id)![1];
      members.set(groups[group].name, [...(members.get(groups[group].name) ?? []), name]);
    }
    expect([...members.values()].every((m) => m.length <= 10)).toBe(true);
    const web = [...members].filter(([name]) => name.startsWith('bench-production-web')).sort();
    expect(web.map(([name, m]) => [name, m.length])).toEqual([['bench-production-web', 10], ['bench-production-web-2', 10], ['bench-production-web-3', 2]]);
  });
});
