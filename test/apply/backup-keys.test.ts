// Which hosts back up over sftp to which fleet host, read from a real plan directory (bin/plan on
// the YAML example: four hosts back up to backup1, which backs up off site).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupHostPinFiles, backupLinks } from '../../lib/apply/backup-keys.ts';
import type { PlanDocument } from '../../lib/plan/plan-format.ts';
import { objectPath } from '../../lib/plan/plan-dir.ts';

const root = join(import.meta.dirname, '..', '..');

describe('backupLinks', () => {
  let dir: string;
  let plan: PlanDocument;
  const planned = (host: string, path: string) => readFileSync(join(dir, objectPath(plan.hosts[host]!.files.find((f) => f.path === path)!.sha256!)), 'utf8');

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'upkeep-backup-links-'));
    const env = { ...process.env, RESTIC_PASSWORD: 'unused', ALERT_TOKEN: 'unused', NO_COLOR: '1' };
    const run = spawnSync(join(root, 'bin', 'plan'), ['examples/yaml/fleet.yaml', '--out', dir], { cwd: root, env, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(2);
    plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as PlanDocument;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('links every host backing up to a fleet host with its own sftp user there, and leaves a repository outside the fleet alone', () => {
    expect(backupLinks(plan, planned)).toEqual([
      { client: 'mon1', receiver: 'backup1', user: 'restic-mon1' },
      { client: 'stage1', receiver: 'backup1', user: 'restic-stage1' },
      { client: 'web1', receiver: 'backup1', user: 'restic-web1' },
      { client: 'web2', receiver: 'backup1', user: 'restic-web2' },
    ]);
  });

  it('refuses a plan whose repository host does not create the client\'s user', () => {
    const withoutWeb2 = (host: string, path: string) => planned(host, path).replace(/^u restic-web2 .*$/m, '');
    expect(() => backupLinks(plan, withoutWeb2)).toThrow(/web2 backs up to backup1 as restic-web2, but backup1's plan does not create that user/);
  });
});

describe('backupLinks of a provisioned fleet', () => {
  let dir: string;
  let plan: PlanDocument;
  const planned = (host: string, path: string) => readFileSync(join(dir, objectPath(plan.hosts[host]!.files.find((f) => f.path === path)!.sha256!)), 'utf8');
  const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRotatedBackup1KeyForTestsOnly0000000000000';

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'upkeep-backup-links-'));
    // The hosting example: every host a Hetzner server, so backup1's address and key come at apply time.
    const env = { ...process.env, RESTIC_PASSWORD: 'unused', ALERT_TOKEN: 'unused', PROBE_MAIL_PASSWORD: 'unused', HCLOUD_TOKEN: '', NO_COLOR: '1' };
    const run = spawnSync(join(root, 'bin', 'plan'), ['examples/hosting/fleet.ts', '--out', dir], { cwd: root, env, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(2);
    plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as PlanDocument;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("gives each client of the provisioned backup host that host's address and key from bin/apply's inventory", () => {
    const inventory = { backup1: { name: 'backup1', address: '198.51.100.7', port: 22, hostKey: KEY } };
    const links = backupLinks(plan, planned, inventory);
    expect(links.map((l) => l.client)).toEqual(['mail1', 'monitor1', 'ns1', 'ns2', 'stage1', 'web1', 'web2']);
    for (const link of links) expect(link).toMatchObject({ receiver: 'backup1', pinned: true, pin: { address: '198.51.100.7', port: 22, hostKey: KEY } });
  });

  it('leaves the pin out, to be reported, when the inventory has no key for the backup host (--known-hosts)', () => {
    const links = backupLinks(plan, planned, { backup1: { name: 'backup1', address: '198.51.100.7', port: 22 } });
    expect(links.every((l) => l.pinned === true && l.pin === undefined)).toBe(true);
  });

  it('pins the address in ssh_config for every connection and the key under that address, a port other than 22 included', () => {
    expect(backupHostPinFiles('backup1', { address: '198.51.100.7', port: 22, hostKey: KEY })).toEqual({
      sshConfig: '# Managed by upkeep (bin/apply): the backup host backup1, at its provisioned address.\nHost *\n  HostName 198.51.100.7\n  Port 22\n',
      knownHosts: `198.51.100.7 ${KEY}\n`,
    });
    expect(backupHostPinFiles('backup1', { address: '198.51.100.7', port: 2222, hostKey: KEY }).knownHosts).toBe(`[198.51.100.7]:2222 ${KEY}\n`);
    expect(() => backupHostPinFiles('backup1', { address: '198.51.100.7\nHost evil', port: 22, hostKey: KEY })).toThrow(/address .* cannot be pinned/);
    expect(() => backupHostPinFiles('backup1', { address: '198.51.100.7', port: 22, hostKey: `${KEY}\n* ssh-ed25519 AAAA` })).toThrow(/host key is not/);
  });
});
