import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compileHost } from '../../lib/compile/host.ts';
import { UNIT_DIR } from '../../lib/compile/desired-state.ts';
import { resolvedFleet } from '../fixtures/resolved-fleet.ts';
import { writeRoot } from './unit-root.ts';
import { programsAvailable } from '../programs.ts';

const fleet = resolvedFleet();
const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

describe.skipIf(!programsAvailable('test/compile/systemd-verify.test.ts', ['systemd-analyze']))('compiled units, checked by the real systemd-analyze', () => {
  for (const host of fleet.hosts) {
    it(`every unit of ${host.name} passes systemd-analyze verify without a warning`, () => {
      const state = compileHost(fleet, host);
      const root = writeRoot(state);
      roots.push(root);
      const units = state.files.filter((f) => f.path.startsWith(`${UNIT_DIR}/`)).map((f) => join(root, f.path));
      expect(units.length).toBeGreaterThan(4);
      const run = spawnSync('systemd-analyze', ['verify', `--root=${root}`, ...units], { encoding: 'utf8' });
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
    });
  }

  it('systemd-analyze verify does catch a program that is not installed (so the checks above mean something)', () => {
    const host = fleet.hosts[0];
    const state = compileHost(fleet, host);
    const withoutScripts = { ...state, files: state.files.filter((f) => !f.path.endsWith('/backup.sh')) };
    const root = writeRoot(withoutScripts);
    roots.push(root);
    const run = spawnSync('systemd-analyze', ['verify', `--root=${root}`, join(root, UNIT_DIR, 'upkeep-backup.service')], { encoding: 'utf8' });
    expect(run.stderr).toContain('backup.sh is not executable');
    expect(run.status).not.toBe(0);
  });

  it('a reboot set member whose key is pinned: its readiness service gets the host key as a credential, and its units pass verify', () => {
    const host = fleet.hosts.find((h) => h.updates !== undefined)!;
    const hostKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq3cQ1V7t4mYc0m2bq1pWw8k0p8zQd3Jx2sV1fN0aLm';
    const peer = { host: 'ns9', address: '192.0.2.9', port: 53, hostKey: 'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY= root@ns9' };
    const member = { ...host, hostKey, updates: { ...host.updates!, rebootSet: { set: 'dns', host: host.name, index: 0, count: 2, peers: [peer] } } };
    const state = compileHost({ ...fleet, hosts: fleet.hosts.map((h) => (h === host ? member : h)) }, member);
    const service = state.files.find((f) => f.path === `${UNIT_DIR}/upkeep-reboot-ready@.service`)!;
    expect(service.content).toContain('\nLoadCredential=host-key:/etc/ssh/ssh_host_ed25519_key\nCapabilityBoundingSet=\nPrivateNetwork=yes\nPrivateDevices=yes\n');
    // ssh-keygen wants a user in the passwd database, which a dynamic user is not everywhere.
    expect(service.content).not.toContain('DynamicUser');
    expect(state.files.find((f) => f.path === '/etc/upkeep/reboot-set-signers')!.content).toContain('\nns9 namespaces="upkeep-reboot-ready" ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY=\n');
    const root = writeRoot(state);
    roots.push(root);
    const units = state.files.filter((f) => f.path.startsWith(`${UNIT_DIR}/upkeep-reboot-ready`)).map((f) => join(root, f.path));
    expect(units).toHaveLength(2);
    const run = spawnSync('systemd-analyze', ['verify', `--root=${root}`, ...units], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it("a monitor with a heartbeat: its heartbeat and liveness units pass verify", () => {
    const host = fleet.hosts.find((h) => h.roles.includes('monitor'))!;
    const monitor = { ...host, monitoring: { ...host.monitoring!, heartbeat: { url: { env: 'HEARTBEAT_URL' }, port: 9469 } } };
    const state = compileHost({ ...fleet, hosts: fleet.hosts.map((h) => (h === host ? monitor : h)) }, monitor);
    const root = writeRoot(state);
    roots.push(root);
    const units = state.files.filter((f) => /\/upkeep-(heartbeat|liveness)/.test(f.path)).map((f) => join(root, f.path));
    expect(units).toHaveLength(4);
    const run = spawnSync('systemd-analyze', ['verify', `--root=${root}`, ...units], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('every OnCalendar expression is accepted by systemd-analyze calendar', () => {
    const expressions = new Set<string>();
    for (const host of fleet.hosts) {
      for (const file of compileHost(fleet, host).files) {
        for (const m of (file.content ?? '').matchAll(/^OnCalendar=(.*)$/gm)) expressions.add(m[1]);
      }
    }
    expect(expressions.size).toBeGreaterThan(5);
    const run = spawnSync('systemd-analyze', ['calendar', ...expressions], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });
});
