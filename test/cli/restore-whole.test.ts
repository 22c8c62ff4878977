// upkeep restore --whole: what the backup host and the new machine run. The fleet test
// (test/fleet/backup-whole-restore.test.ts) restores a real host; this pins what the new machine
// keeps of its own (with real tar) and what is refused before connecting.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { runRestore } from '../../lib/cli/restore.ts';
import { dumpCommand, unpackCommand } from '../../lib/cli/restore-whole.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('unpackCommand', () => {
  it("unpacks a snapshot's tar but keeps the new machine's identity, fstab, network and backup key", () => {
    const dir = mkdtempSync(join(tmpdir(), 'upkeep-unpack-'));
    dirs.push(dir);
    const lost = join(dir, 'lost');
    const onto = join(dir, 'new');
    const files = ['etc/machine-id', 'etc/hostname', 'etc/fstab', 'etc/ssh/ssh_host_ed25519_key', 'etc/ssh/sshd_config', 'etc/systemd/network/10-eth.network', 'etc/site.conf', 'var/lib/upkeep/backup/id_ed25519', 'var/lib/upkeep/backup/backup.status', 'srv/www/index.html', 'srv/www/etc/machine-id'];
    for (const f of files) {
      mkdirSync(join(lost, f, '..'), { recursive: true });
      writeFileSync(join(lost, f), `lost ${f}\n`);
    }
    for (const f of ['etc/machine-id', 'etc/hostname', 'etc/ssh/ssh_host_ed25519_key']) {
      mkdirSync(join(onto, f, '..'), { recursive: true });
      writeFileSync(join(onto, f), `new ${f}\n`);
    }
    // As restic dump writes it: member names with a leading slash.
    const archive = join(dir, 'snapshot.tar');
    const pack = spawnSync('tar', ['-c', '-f', archive, '-C', lost, '--transform', 's,^,/,', ...files]);
    expect(pack.status, pack.stderr.toString()).toBe(0);
    const tarLine = unpackCommand().split('\n').find((l) => l.startsWith('tar '));
    expect(tarLine).toBeDefined();
    const unpack = spawnSync('sh', ['-c', `${(tarLine as string).replace(' -C / ', ' -C "$1" ')} < "$2"`, 'sh', onto, archive]);
    expect(unpack.status, unpack.stderr.toString()).toBe(0);
    const read = (f: string) => (existsSync(join(onto, f)) ? readFileSync(join(onto, f), 'utf8') : undefined);
    for (const f of ['etc/machine-id', 'etc/hostname', 'etc/ssh/ssh_host_ed25519_key']) expect(read(f), f).toBe(`new ${f}\n`);
    for (const f of ['etc/fstab', 'etc/systemd/network/10-eth.network', 'var/lib/upkeep/backup/id_ed25519']) expect(read(f), f).toBeUndefined();
    // Anchored: a file of the same name deeper down is restored.
    for (const f of ['etc/ssh/sshd_config', 'etc/site.conf', 'var/lib/upkeep/backup/backup.status', 'srv/www/index.html', 'srv/www/etc/machine-id']) expect(read(f), f).toBe(`lost ${f}\n`);
  });
});

describe('dumpCommand', () => {
  it("reads the repository as its retention does: the repository's user, the password the backup host keeps for the client, a lock", () => {
    const command = dumpCommand('web1');
    expect(command).toContain('. /etc/upkeep/restic/clients/web1.env');
    expect(command).toContain('user=$(systemctl show -p User --value upkeep-backup-prune-web1.service)');
    expect(command).toContain('-p User="$user" -p Group="$user" -p LoadCredential=password:/etc/upkeep/restic/clients/web1.password');
    expect(command).not.toContain('--no-lock');
    expect(command).toContain('snapshots --tag upkeep --latest 1');
    expect(dumpCommand('web1', 'abcd1234')).toContain('id=abcd1234\n');
  });

  it('refuses a host or snapshot that is not a plain name or id', () => {
    expect(() => dumpCommand('web1;reboot')).toThrow(/not a host name/);
    expect(() => dumpCommand('web1', 'latest; reboot')).toThrow(/not a snapshot id/);
  });
});

describe('upkeep restore --whole', () => {
  const io = { stdout: new Writable({ write: (_c, _e, done) => done() }), stderr: new Writable({ write: (_c, _e, done) => done() }) };
  it('takes --whole and --onto together, and neither --at, --to nor --list', async () => {
    await expect(runRestore(['web1', '--whole', '--plan', '/nonexistent'], io)).rejects.toThrow(/--whole and --onto ADDRESS go together/);
    await expect(runRestore(['web1', '--onto', '10.0.0.2', '--plan', '/nonexistent'], io)).rejects.toThrow(/--whole and --onto ADDRESS go together/);
    await expect(runRestore(['web1', '--whole', '--onto', '10.0.0.2', '--at', 'yesterday', '--plan', '/nonexistent'], io)).rejects.toThrow(/--whole takes --snapshot only/);
  });
});
