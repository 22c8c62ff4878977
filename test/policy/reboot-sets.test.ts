import { describe, expect, it } from 'vitest';
import { MIN_SLOT_SECONDS, rebootSlot } from '../../lib/policy/reboot-slot.ts';
import { resolveFleet } from '../../lib/policy/resolve.ts';
import { rebootReadiness, rebootSetEnv, rebootSetSigners } from '../../lib/compile/reboot-set.ts';
import { editable } from '../fixtures/small-fleet.ts';

describe('rebootSlot', () => {
  it('splits the window in order into adjacent slots that cover it exactly, each beginning reboots only in its first half', () => {
    for (const [duration, count] of [[3600, 2], [7200, 3], [7201, 3], [5400, 4], [86400, 7]]) {
      const slots = Array.from({ length: count }, (_, i) => rebootSlot(duration, i, count));
      expect(slots[0].startSeconds).toBe(0);
      expect(slots.at(-1)!.endSeconds).toBe(duration);
      for (let i = 0; i < count; i++) {
        const s = slots[i];
        if (i > 0) expect(s.startSeconds).toBe(slots[i - 1].endSeconds);
        expect(s.beginBySeconds - s.startSeconds).toBe(Math.floor((s.endSeconds - s.startSeconds) / 2));
        expect(s.endSeconds - s.startSeconds).toBeGreaterThanOrEqual(Math.floor(duration / count));
      }
    }
    expect(rebootSlot(3600, 1, 2)).toEqual({ startSeconds: 1800, beginBySeconds: 2700, endSeconds: 3600 });
    expect(rebootSlot(7201, 1, 3)).toEqual({ startSeconds: 2400, beginBySeconds: 3600, endSeconds: 4800 });
    expect(() => rebootSlot(3600, 2, 2)).toThrow('no slot 2 of 2');
  });
});

describe('reboot sets', () => {
  const member = (spec: ReturnType<typeof editable>, name: string) => resolveFleet(spec).fleet.hosts.find((h) => h.name === name)!.updates!.rebootSet;

  it('gives the members of a written set their slot in the order listed and their peers on the set port', () => {
    const spec = editable();
    spec.rebootSets = { web: { hosts: ['web2', 'web1'], port: 443 } };
    expect(resolveFleet(spec).issues).toEqual([]);
    // web1's host key is pinned: it signs its readiness, and web2 checks the signature with it.
    const web1Key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq3cQ1V7t4mYc0m2bq1pWw8k0p8zQd3Jx2sV1fN0aLm';
    spec.hosts.web1.hostKey = `${web1Key} root@web1`;
    expect(member(spec, 'web2')).toEqual({ set: 'web', host: 'web2', index: 0, count: 2, peers: [{ host: 'web1', address: '192.0.2.2', port: 443, hostKey: `${web1Key} root@web1` }] });
    expect(member(spec, 'web1')).toEqual({ set: 'web', host: 'web1', index: 1, count: 2, peers: [{ host: 'web2', address: '192.0.2.3', port: 443 }] });
    expect(rebootSetSigners(member(spec, 'web2')!)).toBe(`# Reboot set "web": the peers' pinned ssh host keys, which sign their readiness (reboot.sh checks).\nweb1 namespaces="upkeep-reboot-ready" ${web1Key}\n`);
    // web2's key is not pinned (as a provisioned host's): web1 takes its answer unsigned.
    expect(rebootSetSigners(member(spec, 'web1')!)).not.toContain('web2');
    expect(member(spec, 'backup1')).toBeUndefined();
    const web1 = resolveFleet(spec).fleet.hosts.find((h) => h.name === 'web1')!;
    // The 2h window: web1's slot is the second hour, in which it begins reboots in the first half.
    const env = rebootSetEnv(web1.updates!.window, web1.updates!.rebootSet!, rebootReadiness(web1));
    // web2 is the first member: its readiness answers on 9470, web1's on 9471.
    expect(env).toContain("UPKEEP_REBOOT_PEERS='web2,192.0.2.3,443,9470'\n");
    expect(env).toContain("UPKEEP_REBOOT_SET='web'\nUPKEEP_REBOOT_SLOT_BEGIN_BY='5400'\nUPKEEP_REBOOT_SLOT_START='3600'\n");
    expect(env).toContain("UPKEEP_REBOOT_READY_CHECKS='web1-disk-usage web1-failed-units'\nUPKEEP_REBOOT_READY_WITHIN='240'\n");
  });

  it('makes a member ready by its own checks that run on it, but its reboot-required check, with two runs of the slowest for them to pass after a boot', () => {
    const spec = editable();
    spec.rebootSets = { web: { hosts: ['web1', 'web2'], port: 443 } };
    spec.hosts.backup1.roles = ['backup', 'monitor'];
    spec.hosts.web1.monitoring = {
      checks: {
        'failed-units': { kind: 'failed-units', interval: '5m' },
        reboot: { kind: 'reboot-required' },
        site: { kind: 'http', url: 'https://web1.example.com/', from: 'backup1' },
      },
    };
    const resolved = resolveFleet(spec);
    expect(resolved.issues).toEqual([]);
    const web1 = resolved.fleet.hosts.find((h) => h.name === 'web1')!;
    expect(web1.monitoring!.checks.map((c) => c.name)).toEqual(['disk-usage', 'failed-units', 'reboot', 'site']);
    // The site check's state is on backup1, and the reboot check is what reports readiness.
    expect(rebootReadiness(web1)).toEqual({ checks: ['web1-disk-usage', 'web1-failed-units'], withinSeconds: 120 + 2 * 300 });
    const web2 = resolved.fleet.hosts.find((h) => h.name === 'web2')!;
    expect(rebootReadiness(web2)).toEqual({ checks: ['web2-disk-usage', 'web2-failed-units'], withinSeconds: 240 });
  });

  it('puts the nameservers in the set "dns" by their role, probed on port 53 at their ssh port default otherwise', () => {
    const spec = editable();
    spec.hosts.web1.roles = ['dns'];
    spec.hosts.web2.roles = ['dns'];
    expect(resolveFleet(spec).issues).toEqual([]);
    expect(member(spec, 'web1')).toEqual({ set: 'dns', host: 'web1', index: 0, count: 2, peers: [{ host: 'web2', address: '192.0.2.3', port: 53 }] });
    expect(member(spec, 'web2')?.index).toBe(1);
    // A written set takes its hosts out of the derived one; a single nameserver left forms no set.
    spec.rebootSets = { pair: { hosts: ['web1', 'backup1'] } };
    expect(member(spec, 'web1')).toEqual({ set: 'pair', host: 'web1', index: 0, count: 2, peers: [{ host: 'backup1', address: '192.0.2.9', port: 22 }] });
    expect(member(spec, 'web2')).toBeUndefined();
  });

  it('reports mistakes at the policy path where they were written', () => {
    const issues = (sets: NonNullable<ReturnType<typeof editable>['rebootSets']>, edit?: (s: ReturnType<typeof editable>) => void) => {
      const spec = editable();
      spec.rebootSets = sets;
      edit?.(spec);
      return resolveFleet(spec).issues;
    };
    expect(issues({ web: { hosts: ['web1', 'web3'] } })).toEqual([{ path: ['rebootSets', 'web', 'hosts', 1], message: 'host "web3" is not a host of this fleet' }]);
    expect(issues({ web: { hosts: ['web1'] } })).toEqual([{ path: ['rebootSets', 'web', 'hosts'], message: 'a reboot set needs at least two hosts' }]);
    expect(issues({ a: { hosts: ['web1', 'web2'] }, b: { hosts: ['backup1', 'web2'] } })).toEqual([{ path: ['rebootSets', 'b', 'hosts', 1], message: 'host "web2" is already in reboot set "a"; a host belongs to one set at most' }]);
    expect(issues({ Web: { hosts: ['web1', 'web2'] } })[0].path).toEqual(['rebootSets', 'Web']);
    expect(issues({ web: { hosts: ['web1', 'web2'], port: 70000 } })).toEqual([{ path: ['rebootSets', 'web', 'port'], message: 'port must be a whole number from 1 to 65535, got 70000' }]);
    expect(issues({ mixed: { hosts: ['web1', 'stage1'] } })).toEqual([{ path: ['rebootSets', 'mixed', 'hosts', 1], message: 'host "stage1" has another maintenance window than "web1"; the members of reboot set "mixed" share one window, split into a slot each' }]);
    expect(issues({ web: { hosts: ['web1', 'web2'] } }, (s) => (s.hosts.web2.updates = { reboot: 'never' }))).toEqual([{ path: ['rebootSets', 'web', 'hosts', 1], message: 'host "web2" never reboots (updates.reboot: never); leave it out of reboot set "web"' }]);
    // Six hosts in a 2h window: 20 minutes each is enough; seven are not.
    expect(MIN_SLOT_SECONDS).toBe(1200);
    const many = (n: number) => (s: ReturnType<typeof editable>) => {
      for (let i = 3; i <= n; i++) s.hosts[`web${i}`] = { group: 'production', roles: ['web'], address: `192.0.2.${100 + i}` };
    };
    const hosts = (n: number) => Array.from({ length: n }, (_, i) => `web${i + 1}`);
    expect(issues({ web: { hosts: hosts(6) } }, many(6))).toEqual([]);
    expect(issues({ web: { hosts: hosts(7) } }, many(7))).toEqual([{ path: ['rebootSets', 'web'], message: 'the maintenance window of 120 minutes split among 7 hosts of reboot set "web" gives slots shorter than 20 minutes; lengthen the window' }]);
  });
});
