import { describe, expect, it } from 'vitest';
import { synthesizeInfra } from '../../lib/compile/infra.ts';
import { diffInfra, infraDiffFromPlanJson, renderInfraSection } from '../../lib/plan/infra-diff.ts';
import { OPERATOR_KEYS, generationsOf, infraFleet } from '../fixtures/infra-fleet.ts';

function stack(edit?: (spec: any) => void, salt = ''): Record<string, string> {
  const fleet = infraFleet(edit);
  return synthesizeInfra(fleet, generationsOf(fleet, salt))!;
}

const base = stack();
const NOTHING = { add: [], change: [], replace: [], destroy: [] };

describe('the offline infrastructure diff', () => {
  it('finds nothing between a stack and itself', () => {
    expect(diffInfra(base, stack())).toEqual(NOTHING);
  });

  it('adds every resource when nothing was planned before', () => {
    const diff = diffInfra(undefined, base);
    expect(diff.add).toContain('hcloud_server.web1');
    expect(diff.add).toContain('tls_private_key.web1');
    expect(diff.add).toHaveLength(Object.values(JSON.parse(base['main.tf.json']).resource).reduce((n: number, byName: any) => n + Object.keys(byName).length, 0));
    expect([...diff.change, ...diff.replace, ...diff.destroy]).toEqual([]);
  });

  it('resizes a server in place', () => {
    expect(diffInfra(base, stack((s) => (s.hosts.web1.provision.serverType = 'cx42')))).toEqual({ ...NOTHING, change: ['hcloud_server.web1'] });
  });

  it('changes the servers whose policy generation label changed, and nothing else', () => {
    const diff = diffInfra(base, stack(undefined, 'x'));
    expect(diff.change).toEqual(['backup1', 'mail1', 'monitor1', 'ns1', 'ns2', 'stage1', 'web1', 'web2'].map((h) => `hcloud_server.${h}`));
    expect([...diff.add, ...diff.replace, ...diff.destroy]).toEqual([]);
  });

  it('replaces a server for a new image, and whatever depends on its id', () => {
    expect(diffInfra(base, stack((s) => (s.hosts.ns1.provision.image = 'debian-13')))).toEqual({
      add: [],
      // The backup firewall and its reboot set's admit ns1 by its (new) IPv6 network.
      change: ['hcloud_firewall.backup-backup1', 'hcloud_firewall.reboot-set-dns'],
      replace: ['hcloud_server.ns1', 'hcloud_server_network.ns1'],
      destroy: [],
    });
  });

  it('moves the backup server with its address and volume when its location changes', () => {
    const diff = diffInfra(base, stack((s) => (s.hosts.backup1.provision.location = 'fsn1')));
    expect(diff.replace).toEqual(['hcloud_primary_ip.backup1', 'hcloud_server.backup1', 'hcloud_server_network.backup1', 'hcloud_volume.backup1', 'hcloud_volume_attachment.backup1']);
    // backup1 is no client of itself, so its own firewall keeps its rules.
    expect([...diff.add, ...diff.change, ...diff.destroy]).toEqual([]);
  });

  it('leaves running servers alone when an operator key is added', () => {
    const diff = diffInfra(base, stack((s) => s.provisioning.operatorKeys.push('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC0n3w carol@example.com')));
    expect(diff.add).toHaveLength(1);
    expect(diff.add[0]).toMatch(/^hcloud_ssh_key\.operator-[0-9a-f]{12}$/);
    expect([...diff.change, ...diff.replace, ...diff.destroy]).toEqual([]);
  });

  it('leaves the other keys alone when an operator key is removed', () => {
    const diff = diffInfra(base, stack((s) => (s.provisioning.operatorKeys = [OPERATOR_KEYS[1]])));
    expect(diff).toEqual({ ...NOTHING, destroy: [expect.stringMatching(/^hcloud_ssh_key\.operator-/)] });
  });

  it('destroys every resource of a host that left the policy', () => {
    const diff = diffInfra(base, stack((s) => delete s.hosts.web2));
    expect(diff.destroy).toEqual(['hcloud_primary_ip.web2', 'hcloud_server.web2', 'hcloud_server_network.web2', 'tls_private_key.web2']);
    expect(diff.change).toEqual(['hcloud_firewall.backup-backup1']);
  });

  it('destroys everything when the fleet stops provisioning', () => {
    const diff = diffInfra(base, undefined);
    expect(diff.destroy).toContain('hcloud_volume.backup1');
    expect(diff.add).toEqual([]);
  });
});

describe('the resource changes of a saved plan', () => {
  it('maps the engine actions to add, change, replace and destroy, skipping data sources and no-ops', () => {
    const plan = {
      resource_changes: [
        { address: 'hcloud_server.b', mode: 'managed', change: { actions: ['create', 'delete'] } },
        { address: 'hcloud_server.a', mode: 'managed', change: { actions: ['delete', 'create'] } },
        { address: 'hcloud_rdns.a', mode: 'managed', change: { actions: ['update'] } },
        { address: 'hcloud_ssh_key.x', mode: 'managed', change: { actions: ['create'] } },
        { address: 'hcloud_volume.v', mode: 'managed', change: { actions: ['delete'] } },
        { address: 'hcloud_firewall.f', mode: 'managed', change: { actions: ['no-op'] } },
        { address: 'data.hcloud_image.i', mode: 'data', change: { actions: ['read'] } },
      ],
    };
    expect(infraDiffFromPlanJson(plan)).toEqual({ add: ['hcloud_ssh_key.x'], change: ['hcloud_rdns.a'], replace: ['hcloud_server.a', 'hcloud_server.b'], destroy: ['hcloud_volume.v'] });
  });

  it('reads a plan without changes', () => {
    expect(infraDiffFromPlanJson({ format_version: '1.2' })).toEqual(NOTHING);
  });
});

describe('the infrastructure section of plan.md', () => {
  it('warns loudly, first, when a server, volume or address is destroyed or replaced', () => {
    const text = renderInfraSection({ add: [], change: ['hcloud_firewall.web'], replace: ['hcloud_server.mail1', 'hcloud_server_network.mail1'], destroy: ['hcloud_volume.backup1'] });
    const lines = text.split('\n');
    expect(lines[0]).toBe('## Infrastructure');
    expect(lines[2]).toMatch(/^> \*\*WARNING: 2 server\(s\), volume\(s\) or address\(es\) will be DESTROYED or REPLACED\.\*\*/);
    expect(lines[2]).toContain('`hcloud_server.mail1` (replace), `hcloud_volume.backup1` (destroy)');
    expect(lines[2]).not.toContain('hcloud_server_network');
    expect(text).toContain('**0 to add, 1 to change, 2 to replace, 1 to destroy**');
    expect(text).toContain('To replace (destroyed, then created again):\n\n- `hcloud_server.mail1`\n- `hcloud_server_network.mail1`\n');
  });

  it('stays calm when nothing is lost', () => {
    const text = renderInfraSection({ add: ['hcloud_server.web3'], change: ['hcloud_server.web1'], replace: ['hcloud_server_network.web1'], destroy: ['hcloud_firewall.old'] });
    expect(text).not.toContain('WARNING');
    expect(text).toContain('To add:\n\n- `hcloud_server.web3`\n');
  });

  it('says when there is nothing to do', () => {
    expect(renderInfraSection(NOTHING)).toBe('## Infrastructure\n\n**0 to add, 0 to change, 0 to replace, 0 to destroy**\n\nNo infrastructure changes.\n');
  });
});
