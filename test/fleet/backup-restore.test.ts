// Fleet backups end to end on real hosts: bin/plan and bin/apply set up stage1 and web1 to back up
// with restic over sftp to backup1 (one sftp-only user per client, the client's own key exchanged
// by the applier), and a file web1 backed up, then lost, comes back byte for byte.
// The tests build on each other in order.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPlan, entries } from './apply-helpers.ts';
import { runCommand } from './run-command.ts';
import { FLEET_HOOK_TIMEOUT_MS, FLEET_TEST_TIMEOUT_MS, fleetAvailable, startFleet, type TestFleet } from './testbed.ts';

const HOSTS = ['stage1', 'web1', 'backup1'];
const PASSWORD_ENV = 'TEST_RESTIC_PASSWORD';
const PRECIOUS = '/srv/data/precious.bin';
const BACKUP_SH = '/usr/local/lib/upkeep/backup.sh';
const EXEMPT = 'A throwaway test container: only its backups are under test here.';

/** The policy: defaults back up /srv/data to backup1, which receives and is exempt itself. */
function policy(fleet: TestFleet): string {
  const host = (name: string, group: string, extra: string[] = []) => {
    const h = fleet.host(name);
    return [`  ${name}:`, `    group: ${group}`, `    address: ${h.address}`, `    hostKey: ${h.hostKey}`, ...extra, '    exempt:', `      updates: "${EXEMPT}"`, `      monitoring: "${EXEMPT}"`];
  };
  return [
    'name: backuptest',
    'defaults:',
    '  backups:',
    '    schedule: "*-*-* 01:30:00"',
    '    retention: { daily: 7 }',
    '    paths: ["/srv/data"]',
    '    repository: { host: backup1 }',
    `    password: { env: ${PASSWORD_ENV} }`,
    '    check: { schedule: "Sun *-*-* 05:00:00", readDataSubset: 5% }',
    '    drill: { schedule: "Sat *-*-* 06:00:00" }',
    'groups:',
    '  staging: { staging: true }',
    '  production: { after: [staging] }',
    'hosts:',
    ...host('stage1', 'staging'),
    ...host('web1', 'production'),
    ...host('backup1', 'production', ['    roles: [backup]']),
    `      backups: "It holds the other hosts' repositories."`,
    '',
  ].join('\n');
}

describe.skipIf(!fleetAvailable('the backup restore tests (test/fleet/backup-restore.test.ts)'))('fleet backups over sftp, restored on a real host', () => {
  let fleet: TestFleet;
  let work: string;
  let planCount = 0;
  let lastPlan: string | undefined;
  const content = randomBytes(4096);

  /** bin/plan on the policy, against the last applied plan; `changes` is what its exit code must say. */
  async function plan(changes: boolean): Promise<string> {
    planCount += 1;
    const out = join(work, `plan-${planCount}`);
    const result = await runCommand(join(import.meta.dirname, '..', '..', 'bin', 'plan'), [join(work, 'fleet.yaml'), '--out', out, ...(lastPlan ? ['--base', lastPlan] : [])], {
      env: { ...process.env, NO_COLOR: '1' },
    });
    // bin/plan's exit codes: 0 no changes, 2 changes present.
    expect(result.exitCode, `${result.stdout}${result.stderr}`).toBe(changes ? 2 : 0);
    return out;
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'upkeep-backup-test-'));
    process.env[PASSWORD_ENV] = randomBytes(18).toString('base64');
    fleet = await startFleet(HOSTS);
    writeFileSync(join(work, 'fleet.yaml'), policy(fleet));
  }, FLEET_HOOK_TIMEOUT_MS);
  afterAll(async () => {
    delete process.env[PASSWORD_ENV];
    await fleet?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  }, FLEET_HOOK_TIMEOUT_MS);

  it('applies the policy and puts each client key into its own receiving user on backup1', async () => {
    const dir = await plan(true);
    const run = await applyPlan(fleet, dir);
    expect(run.exitCode, run.stderr).toBe(0);
    lastPlan = dir;
    for (const client of ['stage1', 'web1']) {
      expect(entries(run, client, 'backup-key').map((e) => e.result)).toEqual(['ok']);
      const key = (await fleet.host(client).ssh(`${BACKUP_SH} key`)).stdout;
      expect(key).toMatch(/^ssh-ed25519 /);
      expect((await fleet.host('backup1').ssh(`cat /var/lib/upkeep/backup-clients/restic-${client}.keys`)).stdout).toBe(key);
    }
    expect(entries(run, 'backup1', 'backup-keys')).toMatchObject([{ result: 'changed' }]);
    // read-state, apply, confirm, health gate; plus a client's key, or a receiver's keys; plus the fleet lock on stage1.
    expect(run.roundTrips).toEqual({ backup1: 5, stage1: 7, web1: 5 });
    const users = await fleet.host('backup1').ssh('stat -c "%U %a %n" /srv/restic/stage1 /srv/restic/web1');
    expect(users.stdout).toBe('restic-stage1 700 /srv/restic/stage1\nrestic-web1 700 /srv/restic/web1\n');
  }, FLEET_TEST_TIMEOUT_MS);

  it('backs up a file from web1, restores it with backup.sh restore after it was deleted, byte for byte', async () => {
    const web1 = fleet.host('web1');
    const put = await web1.ssh(`mkdir -p /srv/data && base64 -d > ${PRECIOUS} && sha256sum ${PRECIOUS}`, { input: content.toString('base64') });
    expect(put.exitCode, put.stderr).toBe(0);
    const backup = await web1.ssh('systemctl start upkeep-backup.service; echo "exit $?"; cat /var/lib/upkeep/backup/backup.status', { timeoutMs: 300_000 });
    expect(backup.stdout, (await web1.ssh('journalctl -u upkeep-backup.service --no-pager | tail -20')).stdout).toMatch(/^exit 0\n\d+ ok snapshot saved\n$/);
    expect((await fleet.host('backup1').ssh('ls /srv/restic/web1')).stdout).toContain('config');

    expect((await web1.ssh(`rm ${PRECIOUS} && test ! -e ${PRECIOUS}`)).exitCode).toBe(0);
    const restored = await web1.ssh(`${BACKUP_SH} restore ${PRECIOUS}`, { timeoutMs: 300_000 });
    expect(restored.exitCode, restored.stderr).toBe(0);
    const back = await web1.ssh(`base64 -w0 ${PRECIOUS}`);
    expect(Buffer.from(back.stdout, 'base64').equals(content)).toBe(true);
  }, FLEET_TEST_TIMEOUT_MS);

  it('restores with plain restic and the host\'s own settings too, as an operator without upkeep would', async () => {
    const web1 = fleet.host('web1');
    const target = '/root/restore-by-hand';
    const result = await web1.ssh(`set -a; . /etc/upkeep/restic/backup.env; set +a; restic -o "sftp.command=$UPKEEP_SFTP_COMMAND" restore latest --include ${PRECIOUS} --target ${target} >&2 && base64 -w0 ${target}${PRECIOUS}`, { timeoutMs: 300_000 });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(Buffer.from(result.stdout, 'base64').equals(content)).toBe(true);
  }, FLEET_TEST_TIMEOUT_MS);

  it('passes the restore drill, which writes its status', async () => {
    const web1 = fleet.host('web1');
    const drill = await web1.ssh('systemctl start upkeep-restore-drill.service; echo "exit $?"; cat /var/lib/upkeep/backup/drill.status', { timeoutMs: 300_000 });
    expect(drill.stdout, (await web1.ssh('journalctl -u upkeep-restore-drill.service --no-pager | tail -20')).stdout).toMatch(/^exit 0\n\d+ ok restored and verified 1 files\n$/);
  }, FLEET_TEST_TIMEOUT_MS);

  it('does not let one client reach another client\'s repository', async () => {
    const stage1 = fleet.host('stage1');
    const result = await stage1.ssh(
      `. /etc/upkeep/restic/backup.env; echo ls /srv/restic/web1 | sftp -b - -i "$UPKEEP_SFTP_KEY" -o UserKnownHostsFile=/etc/upkeep/restic/known_hosts -o BatchMode=yes restic-web1@${fleet.host('backup1').address}`,
    );
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toMatch(/Permission denied/);
  }, FLEET_TEST_TIMEOUT_MS);

  it('changes nothing on a second apply and exchanges no keys: one round trip per host', async () => {
    const dir = await plan(false);
    const keysBefore = (await fleet.host('backup1').ssh('stat -c "%Y %i" /var/lib/upkeep/backup-clients/*.keys')).stdout;
    const run = await applyPlan(fleet, dir);
    expect(run.exitCode, run.stderr).toBe(0);
    for (const name of HOSTS) expect(entries(run, name, 'apply').map((e) => e.result)).toEqual(['unchanged']);
    expect(entries(run, 'backup1', 'backup-keys').map((e) => e.result)).toEqual(['unchanged']);
    expect(run.journal.entries.filter((e) => e.step === 'backup-key')).toEqual([]);
    // The lock host (stage1, first in plan order) adds taking and releasing the fleet lock.
    expect(run.roundTrips).toEqual({ backup1: 1, stage1: 3, web1: 1 });
    expect((await fleet.host('backup1').ssh('stat -c "%Y %i" /var/lib/upkeep/backup-clients/*.keys')).stdout).toBe(keysBefore);
  }, FLEET_TEST_TIMEOUT_MS);

  it('replaces the key of a client that made a new one (a rebuilt host): the old key no longer logs in', async () => {
    const web1 = fleet.host('web1');
    const oldKey = await web1.ssh('cp /var/lib/upkeep/backup/id_ed25519 /root/old-backup-key && rm /var/lib/upkeep/backup/id_ed25519 /var/lib/upkeep/backup/id_ed25519.pub');
    expect(oldKey.exitCode, oldKey.stderr).toBe(0);
    const run = await applyPlan(fleet, await plan(false));
    expect(run.exitCode, run.stderr).toBe(0);
    expect(entries(run, 'web1', 'backup-key').map((e) => e.result)).toEqual(['ok']);
    expect(entries(run, 'backup1', 'backup-keys')).toMatchObject([{ result: 'changed', detail: 'keys written for restic-web1' }]);
    const newKey = (await web1.ssh(`${BACKUP_SH} key`)).stdout;
    expect((await fleet.host('backup1').ssh('cat /var/lib/upkeep/backup-clients/restic-web1.keys')).stdout).toBe(newKey);

    const backup = await web1.ssh('systemctl start upkeep-backup.service; echo "exit $?"', { timeoutMs: 300_000 });
    expect(backup.stdout).toBe('exit 0\n');
    const sftp = (key: string) => web1.ssh(`echo ls /srv/restic/web1 | sftp -b - -i ${key} -o UserKnownHostsFile=/etc/upkeep/restic/known_hosts -o BatchMode=yes restic-web1@${fleet.host('backup1').address}`);
    expect((await sftp('/var/lib/upkeep/backup/id_ed25519')).exitCode).toBe(0);
    const old = await sftp('/root/old-backup-key');
    expect(old.exitCode).not.toBe(0);
    expect(old.stderr).toMatch(/Permission denied/);
  }, FLEET_TEST_TIMEOUT_MS);
});
