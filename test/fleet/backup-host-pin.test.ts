// The provisioned fleet's backup host, as its clients and its volume see it. web1 and backup1 are
// test hosts playing Hetzner servers: their addresses and bootstrap keys reach bin/apply as
// Terraform outputs from a FAKE Hetzner engine (test/contract/fake-hetzner.ts); bin/apply rotates
// the bootstrap keys and pins backup1's address and rotated key on web1 from its own inventory.
// backup1 has a volume in the policy; a tmpfs mounted at the backup root stands in for it (a
// container has no Hetzner volume to attach). Then real backups over ssh: to the pinned host only,
// onto the volume only.
//
// The tests build on each other in order.

import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPlan } from '../../lib/cli/plan.ts';
import { entries, pinPresentedKeys } from './apply-helpers.ts';
import { FLEET_HOOK_TIMEOUT_MS, FLEET_TEST_TIMEOUT_MS, fleetAvailable, type TestFleet } from './testbed.ts';
import { startProvisionedFleet, type ProvisionedTestFleet } from './provisioned-fleet.ts';

const PASSWORD_ENV = 'TEST_PIN_BACKUP_SECRET';
const EXEMPT = 'A throwaway test container: only the backups are under test here.';
const PIN_DIR = '/var/lib/upkeep/backup-host';
/**
 * Mounts the STAND-IN for backup1's Hetzner volume at the backup root: a tmpfs of its own (kept
 * mounted at /mnt/volume-stand-in, so that unmounting the backup root keeps its content, as a
 * detached volume would), bound at /srv/restic.
 */
const MOUNT_STAND_IN =
  'mkdir -p /mnt/volume-stand-in /srv/restic && { mountpoint -q /mnt/volume-stand-in || mount -t tmpfs -o size=256m,mode=0755 volume-stand-in /mnt/volume-stand-in; } && mount --bind /mnt/volume-stand-in /srv/restic';

function policy(operatorKey: string): string {
  return [
    'name: pintest',
    'provisioning:',
    '  token: { env: HCLOUD_TOKEN }',
    '  adminNetworks: ["203.0.113.0/24"]',
    `  operatorKeys: ["${operatorKey}"]`,
    'groups:',
    '  staging: { staging: true }',
    'hosts:',
    '  web1:',
    '    group: staging',
    '    provision: { serverType: cx22 }',
    '    backups:',
    '      paths: ["/srv/data"]',
    `      password: { env: ${PASSWORD_ENV} }`,
    '      repository: { host: backup1 }',
    `    exempt: { updates: "${EXEMPT}", monitoring: "${EXEMPT}" }`,
    '  backup1:',
    '    group: staging',
    '    roles: [backup]',
    '    provision: { serverType: cx22, volumeSize: 10 }',
    `    exempt: { updates: "${EXEMPT}", monitoring: "${EXEMPT}", backups: "${EXEMPT}" }`,
    '',
  ].join('\n');
}

describe.skipIf(!fleetAvailable('the backup host pin test (test/fleet/backup-host-pin.test.ts)'))('backup clients of a provisioned backup host pin its address and key', () => {
  let provisioned: ProvisionedTestFleet;
  let fleet: TestFleet;
  let planDir: string;
  const rotatedKey = (host: string) => provisioned.rotatedKey(host);
  const apply = () => provisioned.apply(planDir);

  /** Starts web1's backup unit; its exit, status line and journal. */
  async function backup(): Promise<{ exit: string; status: string; journal: string }> {
    const web1 = fleet.host('web1');
    const run = await web1.ssh('systemctl start upkeep-backup.service; echo "exit $?"; cat /var/lib/upkeep/backup/backup.status', { timeoutMs: 300_000 });
    // This run's lines only.
    const journal = await web1.ssh('journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID="$(systemctl show -p InvocationID --value upkeep-backup.service)"');
    const [exit = '', status = ''] = run.stdout.split('\n');
    return { exit, status, journal: journal.stdout };
  }

  /** Snapshots of web1's repository, read on backup1 as root with web1's password (the one its retention job uses). */
  async function snapshotsOnBackupHost(): Promise<{ time: string; paths: string[] }[]> {
    const list = await fleet.host('backup1').ssh('RESTIC_PASSWORD_FILE=/etc/upkeep/restic/clients/web1.password restic -r /srv/restic/web1 --no-lock --no-cache snapshots --json', { timeoutMs: 300_000 });
    expect(list.exitCode, list.stderr).toBe(0);
    return JSON.parse(list.stdout) as { time: string; paths: string[] }[];
  }

  beforeAll(async () => {
    provisioned = await startProvisionedFleet(['web1', 'backup1'], { [PASSWORD_ENV]: randomBytes(18).toString('base64') });
    fleet = provisioned.fleet;
    const standIn = await fleet.host('backup1').ssh(MOUNT_STAND_IN);
    expect(standIn.exitCode, standIn.stderr).toBe(0);
    writeFileSync(join(provisioned.work, 'fleet.yaml'), policy(provisioned.operatorKey));
    planDir = join(provisioned.work, 'plan');
    expect(await runPlan([join(provisioned.work, 'fleet.yaml'), '--out', planDir])).toBe(2);
  }, FLEET_HOOK_TIMEOUT_MS);
  afterAll(() => provisioned?.stop(), FLEET_HOOK_TIMEOUT_MS);

  it('plans no address or key for backup1 (they do not exist yet), and bin/apply pins the provisioned address with the rotated key on web1', async () => {
    const env = readFileSync(join(planDir, 'plan.json'), 'utf8');
    expect(env).not.toContain(fleet.host('backup1').address);

    const run = await apply();
    expect(run.exitCode, run.stderr).toBe(0);
    expect(entries(run, 'backup1', 'host-key-rotate')[0]?.result).toBe('changed');
    expect(entries(run, 'web1', 'backup-host-pin')[0]).toMatchObject({ result: 'changed', detail: `backup1 pinned at ${fleet.host('backup1').address}` });
    const backup1 = fleet.host('backup1');
    // The key bin/apply itself verified after the rotation, not the bootstrap key from Terraform.
    expect(rotatedKey('backup1')).not.toBe(backup1.hostKey);
    const web1 = fleet.host('web1');
    expect((await web1.ssh(`cat ${PIN_DIR}/known_hosts`)).stdout).toBe(`${backup1.address} ${rotatedKey('backup1')}\n`);
    expect((await web1.ssh(`cat ${PIN_DIR}/ssh_config`)).stdout).toContain(`Host *\n  HostName ${backup1.address}\n  Port 22\n`);
  }, FLEET_TEST_TIMEOUT_MS);

  it("backs web1 up to backup1 at the pinned address: the file is in web1's repository there", async () => {
    const content = randomBytes(8192);
    expect((await fleet.host('web1').ssh('mkdir -p /srv/data && base64 -d > /srv/data/precious.bin', { input: content.toString('base64') })).exitCode).toBe(0);
    const result = await backup();
    expect(`${result.exit}\n${result.status}`, result.journal).toMatch(/^exit 0\n\d+ ok snapshot saved$/);
    expect(await snapshotsOnBackupHost()).toMatchObject([{ paths: ['/srv/data'] }]);
    const dump = await fleet.host('backup1').ssh('RESTIC_PASSWORD_FILE=/etc/upkeep/restic/clients/web1.password restic -r /srv/restic/web1 --no-lock --no-cache dump latest /srv/data/precious.bin | base64 -w0', { timeoutMs: 300_000 });
    expect(Buffer.from(dump.stdout, 'base64').equals(content)).toBe(true);
    // On the volume's file system, not the root disk's.
    const where = await fleet.host('backup1').ssh('findmnt -n -o SOURCE,FSTYPE -T /srv/restic/web1/config; [ "$(stat -c %d /srv/restic/web1/config)" != "$(stat -c %d /)" ] && echo "not on the root file system"');
    expect(where.stdout).toBe('volume-stand-in tmpfs\nnot on the root file system\n');
  }, FLEET_TEST_TIMEOUT_MS);

  it('does not connect to whatever answers at the name: another machine there is never asked', async () => {
    const web1 = fleet.host('web1');
    // web1 itself claims the name backup1 (it runs sshd too); the pin still leads to backup1's address.
    expect((await web1.ssh(`echo '${web1.address} backup1' >> /etc/hosts && getent hosts backup1`)).stdout).toContain(web1.address);
    try {
      const result = await backup();
      expect(`${result.exit}\n${result.status}`, result.journal).toMatch(/^exit 0\n\d+ ok snapshot saved$/);
      expect(await snapshotsOnBackupHost()).toHaveLength(2);
    } finally {
      expect((await web1.ssh("sed -i '/ backup1$/d' /etc/hosts")).exitCode).toBe(0);
    }
  }, FLEET_TEST_TIMEOUT_MS);

  it('costs no round trip on the next apply while the pin is in place', async () => {
    const run = await apply();
    expect(run.exitCode, run.stderr).toBe(0);
    expect(entries(run, 'web1', 'backup-host-pin')[0]?.result).toBe('unchanged');
  }, FLEET_TEST_TIMEOUT_MS);

  it('connects to nothing without the pin, saying why; the next apply writes it again', async () => {
    expect((await fleet.host('web1').ssh(`rm -r ${PIN_DIR}`)).exitCode).toBe(0);
    const refused = await backup();
    expect(refused.exit).toBe('exit 1');
    expect(refused.status).toMatch(/^\d+ failed the backup host's address and host key are not pinned on this host \(\/var\/lib\/upkeep\/backup-host\/ssh_config, known_hosts\); bin\/apply writes them once the backup host is provisioned$/);
    // Refused before restic ran: nothing tried to connect.
    expect(refused.journal).not.toMatch(/restic|rclone|ssh:/i);

    const run = await apply();
    expect(run.exitCode, run.stderr).toBe(0);
    expect(entries(run, 'web1', 'backup-host-pin')[0]?.result).toBe('changed');
    const again = await backup();
    expect(`${again.exit}\n${again.status}`, again.journal).toMatch(/^exit 0\n\d+ ok snapshot saved$/);
    expect(await snapshotsOnBackupHost()).toHaveLength(3);
  }, FLEET_TEST_TIMEOUT_MS);

  it('refuses a backup host that presents another key at the pinned address, and sends nothing', async () => {
    const backup1 = fleet.host('backup1');
    // Another machine at backup1's address, as far as ssh can tell: a host key nobody pinned.
    const swap = await backup1.ssh(
      'cp -p /etc/ssh/ssh_host_ed25519_key /root/pinned_key && cp -p /etc/ssh/ssh_host_ed25519_key.pub /root/pinned_key.pub && rm -f /etc/ssh/ssh_host_ed25519_key* && ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key && systemctl restart ssh.service',
    );
    expect(swap.exitCode, swap.stderr).toBe(0);
    await pinPresentedKeys(fleet);
    try {
      const refused = await backup();
      expect(refused.exit).toBe('exit 1');
      expect(refused.status).toMatch(/^\d+ failed the backup host did not present its pinned ssh host key, so nothing was sent: a different machine \(or a rebuilt backup host whose new key bin\/apply has not pinned yet\) answers at its address$/);
      expect(refused.journal).toMatch(/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/);
      expect(await snapshotsOnBackupHost()).toHaveLength(3);
    } finally {
      const back = await backup1.ssh('mv -f /root/pinned_key /etc/ssh/ssh_host_ed25519_key && mv -f /root/pinned_key.pub /etc/ssh/ssh_host_ed25519_key.pub && systemctl restart ssh.service');
      expect(back.exitCode, back.stderr).toBe(0);
      await pinPresentedKeys(fleet);
    }
    const again = await backup();
    expect(`${again.exit}\n${again.status}`, again.journal).toMatch(/^exit 0\n\d+ ok snapshot saved$/);
  }, FLEET_TEST_TIMEOUT_MS);

  it('stores nothing on the root disk while the volume is not mounted: backups and retention refuse, saying why', async () => {
    const backup1 = fleet.host('backup1');
    expect((await backup1.ssh('umount /srv/restic && ! mountpoint -q /srv/restic')).exitCode).toBe(0);
    try {
      const refused = await backup();
      expect(refused.exit).toBe('exit 1');
      expect(refused.status).toMatch(/^\d+ failed cannot read or create the repository \(restic init exited \d+\)$/);
      expect(refused.journal).toContain('backup1: the backup volume is not mounted at /srv/restic; refusing to store backups on the root disk');
      // The root disk's directory under the mount point stayed empty.
      expect((await backup1.ssh('find /srv/restic -mindepth 1')).stdout).toBe('');

      const prune = await backup1.ssh('systemctl start upkeep-backup-prune-web1.service; echo "exit $?"; systemctl status upkeep-backup-prune-web1.service --no-pager');
      expect(prune.stdout).toMatch(/^exit [1-9]/);
      expect(prune.stdout).toContain('AssertPathIsMountPoint=/srv/restic');
      const mount = await backup1.ssh('systemctl restart upkeep-backup-volume.service; echo "exit $?"; journalctl --no-pager -o cat -u upkeep-backup-volume.service -n 5');
      expect(mount.stdout).toMatch(/^exit [1-9]/);
      expect(mount.stdout).toContain('backup-volume: no volume is attached to this server (no /dev/disk/by-id/scsi-0HC_Volume_*); /srv/restic stays unmounted and the backup host refuses backups');
      expect((await backup1.ssh('find /srv/restic -mindepth 1')).stdout).toBe('');
    } finally {
      expect((await backup1.ssh(MOUNT_STAND_IN)).exitCode).toBe(0);
    }
    // The volume back (its content kept): backups land on it again, in the same repository.
    const again = await backup();
    expect(`${again.exit}\n${again.status}`, again.journal).toMatch(/^exit 0\n\d+ ok snapshot saved$/);
    expect(await snapshotsOnBackupHost()).toHaveLength(5);
  }, FLEET_TEST_TIMEOUT_MS);
});
