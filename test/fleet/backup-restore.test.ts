// Fleet backups end to end on real hosts: bin/plan and bin/apply set up stage1 and web1 to back up
// with restic over ssh to backup1 (one user per client, allowed only the append-only rclone server
// on its own repository; the client's own key exchanged by the applier), and a file web1 backed
// up, then lost, comes back byte for byte, also by date with `upkeep restore` from the operator's
// machine past a newer snapshot without it. Each host's repository password is its own. Then root
// on web1 attacks its backups (delete, overwrite, read another repository or backup1's files) and
// fails; retention on backup1 removes exactly the snapshots outside the window and none while a
// forged future snapshot exists.
// The tests build on each other in order.

import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRestore } from '../../lib/cli/restore.ts';
import { applyPlan, entries } from './apply-helpers.ts';
import { expectRetentionToWait } from './retention-wait.ts';
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
    '    retention: { daily: 90 }',
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

describe.skipIf(!fleetAvailable('the backup restore tests (test/fleet/backup-restore.test.ts)'))('fleet backups over ssh, append-only, restored on a real host', () => {
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
    // read-state, health before the change, apply, confirm, health gate, settle; plus a client's
    // key, or a receiver's keys; plus the fleet lock on stage1.
    expect(run.roundTrips).toEqual({ backup1: 7, stage1: 9, web1: 7 });
    const users = await fleet.host('backup1').ssh('stat -c "%U %a %n" /srv/restic/stage1 /srv/restic/web1');
    expect(users.stdout).toBe('restic-stage1 700 /srv/restic/stage1\nrestic-web1 700 /srv/restic/web1\n');
    const timers = await fleet.host('backup1').ssh('systemctl is-enabled upkeep-backup-prune-stage1.timer upkeep-backup-prune-web1.timer');
    expect(timers.stdout).toBe('enabled\nenabled\n');
    // Clients cannot prune an append-only repository: no retention timer there.
    expect((await fleet.host('web1').ssh('systemctl cat upkeep-backup-forget.timer')).exitCode).not.toBe(0);
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

  it('restores a file deleted by mistake by date with upkeep restore from the operator\'s machine, byte for byte, never from the newer snapshot without it', async () => {
    const web1 = fleet.host('web1');
    const file = '/srv/data/report.bin';
    const first = randomBytes(65536);
    const second = randomBytes(65536);
    const backup = async () => {
      const run = await web1.ssh('systemctl start upkeep-backup.service; echo "exit $?"', { timeoutMs: 300_000 });
      expect(run.stdout).toBe('exit 0\n');
    };
    expect((await web1.ssh(`base64 -d > ${file}`, { input: first.toString('base64') })).exitCode).toBe(0);
    await backup();
    const between = (await web1.ssh('sleep 2; date -u "+%Y-%m-%d %H:%M:%S UTC"; sleep 2')).stdout.trim();
    expect((await web1.ssh(`base64 -d > ${file}`, { input: second.toString('base64') })).exitCode).toBe(0);
    await backup();
    expect((await web1.ssh(`rm ${file}`)).exitCode).toBe(0);
    await backup();

    const upkeepRestore = async (...args: string[]) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const sink = (into: Buffer[]) => new Writable({ write: (chunk: Buffer, _e, done) => { into.push(Buffer.from(chunk)); done(); } });
      const code = await runRestore(['web1', ...args, '--plan', lastPlan as string, '--identity', fleet.identityFile], { stdout: sink(out), stderr: sink(err) });
      return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
    };
    const listed = await upkeepRestore('--list');
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout.match(/^[0-9a-f]{8} /gm)?.length).toBeGreaterThanOrEqual(4);

    const byDate = await upkeepRestore(file, '--at', between);
    expect(byDate.code, byDate.stderr).toBe(0);
    expect(byDate.stdout).toMatch(/restored from snapshot [0-9a-f]{8} of /);
    expect(Buffer.from((await web1.ssh(`base64 -w0 ${file}`)).stdout, 'base64').equals(first)).toBe(true);

    const newest = await upkeepRestore(file);
    expect(newest.code, newest.stderr).toBe(0);
    expect(newest.stderr).toMatch(/does not hold: \/srv\/data\/report\.bin; looking at older ones/);
    expect(Buffer.from((await web1.ssh(`base64 -w0 ${file}`)).stdout, 'base64').equals(second)).toBe(true);

    const elsewhere = await upkeepRestore(file, '--at', between, '--to', '/root/restored');
    expect(elsewhere.code, elsewhere.stderr).toBe(0);
    expect(Buffer.from((await web1.ssh(`base64 -w0 /root/restored${file}`)).stdout, 'base64').equals(first)).toBe(true);
  }, FLEET_TEST_TIMEOUT_MS);

  it('restores with plain restic and the host\'s own settings too, as an operator without upkeep would', async () => {
    const web1 = fleet.host('web1');
    const target = '/root/restore-by-hand';
    const result = await web1.ssh(`set -a; . /etc/upkeep/restic/backup.env; set +a; restic -o "rclone.program=$UPKEEP_RCLONE_PROGRAM" -o rclone.args= restore latest --include ${PRECIOUS} --target ${target} >&2 && base64 -w0 ${target}${PRECIOUS}`, { timeoutMs: 300_000 });
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
      `. /etc/upkeep/restic/backup.env; ssh -i "$UPKEEP_SSH_KEY" -o UserKnownHostsFile=/etc/upkeep/restic/known_hosts -o BatchMode=yes restic-web1@${fleet.host('backup1').address} true`,
    );
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toMatch(/Permission denied/);
  }, FLEET_TEST_TIMEOUT_MS);

  it("gives each host its own repository password, which the README's recipe recomputes from the fleet secret", async () => {
    const hash = (host: string) => fleet.host(host).ssh('sha256sum < /etc/upkeep/restic/backup.password | cut -d" " -f1');
    const web1 = (await hash('web1')).stdout.trim();
    const stage1 = (await hash('stage1')).stdout.trim();
    expect(web1).toMatch(/^[0-9a-f]{64}$/);
    expect(web1).not.toBe(stage1);
    // The fleet secret itself is on no host.
    const secret = process.env[PASSWORD_ENV] as string;
    expect(web1).not.toBe(createHash('sha256').update(secret).digest('hex'));
    // The recipe, as the README gives it, with the secret store's output on its stdin.
    const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
    const recipe = /^pass show upkeep\/restic \| (node -e .*) web1$/m.exec(readme)?.[1];
    expect(recipe, 'README: the password recipe under "Backup passwords"').toBeDefined();
    const recomputed = (host: string) => spawnSync('sh', ['-c', `${recipe} "$1"`, 'sh', host], { input: `${secret}\n`, encoding: 'utf8' });
    for (const [host, onHost] of [['web1', web1], ['stage1', stage1]] as const) {
      const run = recomputed(host);
      expect(run.status, run.stderr).toBe(0);
      expect(createHash('sha256').update(run.stdout.trim()).digest('hex')).toBe(onHost);
    }
    // One host's password opens no other host's repository.
    const stage1Backup = await fleet.host('stage1').ssh('mkdir -p /srv/data && echo staging > /srv/data/file && systemctl start upkeep-backup.service; echo "exit $?"', { timeoutMs: 300_000 });
    expect(stage1Backup.stdout).toBe('exit 0\n');
    const own = await fleet.host('backup1').ssh('restic -r /srv/restic/stage1 --password-file /etc/upkeep/restic/clients/stage1.password --no-lock --no-cache cat config', { timeoutMs: 300_000 });
    expect(own.exitCode, own.stderr).toBe(0);
    const cross = await fleet.host('backup1').ssh('restic -r /srv/restic/stage1 --password-file /etc/upkeep/restic/clients/web1.password --no-lock --no-cache cat config', { timeoutMs: 300_000 });
    expect(cross.exitCode).not.toBe(0);
    expect(cross.stderr).toMatch(/wrong password/);
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
    const login = (key: string) => web1.ssh(`ssh -i ${key} -o UserKnownHostsFile=/etc/upkeep/restic/known_hosts -o BatchMode=yes restic-web1@${fleet.host('backup1').address} </dev/null`);
    // The forced command (the rclone server) runs and ends with its input.
    expect((await login('/var/lib/upkeep/backup/id_ed25519')).exitCode).toBe(0);
    const old = await login('/root/old-backup-key');
    expect(old.exitCode).not.toBe(0);
    expect(old.stderr).toMatch(/Permission denied/);
  }, FLEET_TEST_TIMEOUT_MS);

  /** web1's snapshots as backup1's root sees them in the repository itself (read only: no lock, no cache). */
  async function snapshotsOnBackupHost(): Promise<{ short_id: string; time: string }[]> {
    const result = await fleet.host('backup1').ssh(
      'restic -r /srv/restic/web1 --password-file /etc/upkeep/restic/clients/web1.password --no-lock --no-cache snapshots --json',
      { timeoutMs: 300_000 },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    return (JSON.parse(result.stdout) as { short_id: string; time: string }[]).sort((a, b) => a.time.localeCompare(b.time));
  }

  /** A restic command on web1 with its own repository settings, as root there could run it. */
  const webRestic = (args: string) => `set -a; . /etc/upkeep/restic/backup.env; set +a; restic -o "rclone.program=$UPKEEP_RCLONE_PROGRAM" -o rclone.args= ${args}`;

  it('keeps every snapshot when root on web1 tries to forget and prune them with its own key and password', async () => {
    const before = await snapshotsOnBackupHost();
    expect(before.length).toBeGreaterThanOrEqual(2);
    const web1 = fleet.host('web1');
    const forget = await web1.ssh(webRestic('forget --keep-last 1 --prune'), { timeoutMs: 600_000 });
    expect(forget.exitCode, forget.stderr).not.toBe(0);
    expect(forget.stderr).toMatch(/403 Forbidden/);
    const job = await web1.ssh('/usr/local/lib/upkeep/backup.sh forget');
    expect(job.exitCode).toBe(2);
    expect(job.stderr).toContain('no retention rule');
    expect(await snapshotsOnBackupHost()).toEqual(before);
    // And the repository is still whole: backup1 checks it as web1's user would read it.
    const check = await fleet.host('backup1').ssh('restic -r /srv/restic/web1 --password-file /etc/upkeep/restic/clients/web1.password --no-cache check', { timeoutMs: 300_000 });
    expect(check.exitCode, check.stderr).toBe(0);
  }, FLEET_TEST_TIMEOUT_MS);

  it("refuses raw requests from web1's key: deleting or overwriting files, another client's repository, backup1's own files", async () => {
    const web1 = fleet.host('web1');
    const backup1 = fleet.host('backup1');
    const config = (await backup1.ssh('sha256sum /srv/restic/web1/config /srv/restic/stage1/config')).stdout;
    const snapshotFile = (await backup1.ssh('ls /srv/restic/web1/snapshots | head -1')).stdout.trim();
    expect(snapshotFile).toMatch(/^[0-9a-f]{64}$/);
    // A bridge from a local socket to one ssh session per connection, so that curl can speak to
    // the forced rclone server exactly as restic does (HTTP/2 over the session's stdin/stdout).
    const bridge = [
      'import socket, subprocess, sys, threading',
      's = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)',
      'while True:',
      '    c, _ = s.accept()',
      '    p = subprocess.Popen(sys.argv[2:], stdin=subprocess.PIPE, stdout=subprocess.PIPE)',
      '    def up(c=c, p=p):',
      '        while (b := c.recv(65536)): p.stdin.write(b); p.stdin.flush()',
      '        p.stdin.close()',
      '    threading.Thread(target=up, daemon=True).start()',
      '    while (b := p.stdout.read1(65536)): c.sendall(b)',
      '    c.close(); p.wait()',
      '',
    ].join('\n');
    expect((await web1.ssh('cat > /root/bridge.py', { input: bridge })).exitCode).toBe(0);
    const start = await web1.ssh(
      `set -a; . /etc/upkeep/restic/backup.env; set +a; rm -f /root/attack.sock; (setsid python3 /root/bridge.py /root/attack.sock $UPKEEP_RCLONE_PROGRAM </dev/null >/dev/null 2>&1 &); for i in $(seq 50); do [ -S /root/attack.sock ] && exit 0; sleep 0.1; done; exit 1`,
    );
    expect(start.exitCode, start.stderr).toBe(0);
    const request = async (method: string, path: string) => {
      const r = await web1.ssh(`curl -s -o /root/answer -w '%{http_code}' --path-as-is --http2-prior-knowledge --unix-socket /root/attack.sock -X ${method} ${method === 'POST' ? '--data-binary forged' : ''} 'http://backup${path}'; echo; head -c 64 /root/answer | base64 -w0`);
      const [code = '', body = ''] = r.stdout.split('\n');
      return { code, body: Buffer.from(body, 'base64').toString('latin1') };
    };
    // The bridge works: the client's own config is served.
    expect((await request('GET', '/config')).code).toBe('200');
    expect((await request('DELETE', `/snapshots/${snapshotFile}`)).code).toBe('403');
    expect((await request('DELETE', '/config')).code).toBe('403');
    expect((await request('POST', '/config')).code).toBe('403');
    expect((await request('POST', `/snapshots/${snapshotFile}`)).code).toBe('403');
    for (const path of ['/../stage1/config', '/%2e%2e/stage1/config', '/..%2fstage1%2fconfig', '/../../../etc/passwd', '/%2e%2e/%2e%2e/%2e%2e/etc/passwd']) {
      const answer = await request('GET', path);
      expect(answer.code, path).toBe('404');
      expect(answer.body, path).not.toContain('root:');
    }
    await web1.ssh('pkill -f /root/bridge.py; rm -f /root/attack.sock');
    // Any other command or subsystem gets the rclone server instead: no shell, no sftp.
    const ssh = `ssh -i /var/lib/upkeep/backup/id_ed25519 -o UserKnownHostsFile=/etc/upkeep/restic/known_hosts -o BatchMode=yes restic-web1@${backup1.address}`;
    const passwd = await web1.ssh(`timeout 60 ${ssh} cat /etc/passwd </dev/null`);
    expect(passwd.stdout).not.toContain('root:');
    const sftp = await web1.ssh(`echo get /etc/passwd /root/stolen | timeout 60 sftp -b - -i /var/lib/upkeep/backup/id_ed25519 -o UserKnownHostsFile=/etc/upkeep/restic/known_hosts -o BatchMode=yes restic-web1@${backup1.address}; test ! -e /root/stolen`);
    expect(sftp.exitCode, sftp.stdout + sftp.stderr).toBe(0);
    const tunnel = await web1.ssh(`${ssh} -N -o ExitOnForwardFailure=yes -L 127.0.0.1:0:127.0.0.1:22 </dev/null`);
    expect(tunnel.exitCode).not.toBe(0);
    expect((await backup1.ssh('sha256sum /srv/restic/web1/config /srv/restic/stage1/config')).stdout).toBe(config);
    expect((await backup1.ssh(`test -f /srv/restic/web1/snapshots/${snapshotFile}`)).exitCode).toBe(0);
  }, FLEET_TEST_TIMEOUT_MS);

  it('applies retention on backup1: snapshots spread over 120 days keep exactly those within 90 days of the newest', async () => {
    const web1 = fleet.host('web1');
    const backup1 = fleet.host('backup1');
    const real = await snapshotsOnBackupHost();
    // Daily retention of 90 days: 89, 60 and 30 days old stay; 91, 100 and 120 go.
    const ages = [120, 100, 91, 89, 60, 30];
    for (const days of ages) {
      const made = await web1.ssh(webRestic(`backup --quiet --tag upkeep --time "$(date -u -d '-${days} days' '+%Y-%m-%d %H:%M:%S')" /srv/data`), { timeoutMs: 300_000 });
      expect(made.exitCode, made.stderr).toBe(0);
    }
    // A forged snapshot later on the day of the 60-day-old one does not stand in for it.
    const forged = await web1.ssh(webRestic(`backup --quiet --time "$(date -u -d '-60 days +1 hour' '+%Y-%m-%d %H:%M:%S')" /srv/data`), { timeoutMs: 300_000 });
    expect(forged.exitCode, forged.stderr).toBe(0);
    const all = await snapshotsOnBackupHost();
    expect(all).toHaveLength(real.length + ages.length + 1);
    const age = (t: string) => Math.round((Date.now() - Date.parse(t)) / 86_400_000);
    const kept = all.filter((snap) => age(snap.time) < 90);

    const prune = await backup1.ssh('systemctl start upkeep-backup-prune-web1.service; echo "exit $?"', { timeoutMs: 600_000 });
    expect(prune.stdout, (await backup1.ssh('journalctl -u upkeep-backup-prune-web1.service --no-pager | tail -30')).stdout).toBe('exit 0\n');
    expect((await snapshotsOnBackupHost()).map((s) => s.short_id)).toEqual(kept.map((s) => s.short_id));
    expect(kept.map((s) => age(s.time)).filter((a) => a > 0)).toEqual([89, 60, 60, 30]);
    // Everything pruning wrote stays web1's server's to read: web1 can still back up and restore.
    expect((await backup1.ssh('find /srv/restic/web1 ! -user restic-web1')).stdout).toBe('');
    const backup = await web1.ssh('systemctl start upkeep-backup.service; echo "exit $?"', { timeoutMs: 300_000 });
    expect(backup.stdout).toBe('exit 0\n');
  }, FLEET_TEST_TIMEOUT_MS);

  it('forgets nothing while a forged snapshot dated in the future exists, and says so', async () => {
    const web1 = fleet.host('web1');
    const backup1 = fleet.host('backup1');
    const future = await web1.ssh(webRestic(`backup --quiet --time "$(date -u -d '+365 days' '+%Y-%m-%d %H:%M:%S')" /srv/data`), { timeoutMs: 300_000 });
    expect(future.exitCode, future.stderr).toBe(0);
    // An old snapshot that retention would remove, were it not for the forged one.
    const old = await web1.ssh(webRestic(`backup --quiet --time "$(date -u -d '-200 days' '+%Y-%m-%d %H:%M:%S')" /srv/data`), { timeoutMs: 300_000 });
    expect(old.exitCode, old.stderr).toBe(0);
    const before = await snapshotsOnBackupHost();

    const prune = await backup1.ssh('systemctl start upkeep-backup-prune-web1.service; echo "exit $?"', { timeoutMs: 600_000 });
    expect(prune.stdout).not.toBe('exit 0\n');
    expect((await backup1.ssh('systemctl is-failed upkeep-backup-prune-web1.service')).stdout).toBe('failed\n');
    const log = (await backup1.ssh('journalctl -u upkeep-backup-prune-web1.service --no-pager | tail -5')).stdout;
    expect(log).toMatch(/dated in the future/);
    expect(await snapshotsOnBackupHost()).toEqual(before);
  }, FLEET_TEST_TIMEOUT_MS);

  it("waits while web1's backup holds the repository's lock, then applies retention", async () => {
    const web1 = fleet.host('web1');
    const backup1 = fleet.host('backup1');
    const password = '--password-file /etc/upkeep/restic/clients/web1.password --no-cache';
    // The operator removes the forged snapshot of the test before, as backup-prune.sh told them to.
    const forged = (await snapshotsOnBackupHost()).filter((snap) => Date.parse(snap.time) > Date.now() + 86_400_000);
    expect(forged).toHaveLength(1);
    const removed = await backup1.ssh(`restic -r /srv/restic/web1 ${password} forget ${forged[0]!.short_id} && chown -R restic-web1:restic-web1 /srv/restic/web1`, { timeoutMs: 300_000 });
    expect(removed.exitCode, removed.stderr).toBe(0);
    const age = (t: string) => (Date.now() - Date.parse(t)) / 86_400_000;
    const before = await snapshotsOnBackupHost();
    expect(before.filter((snap) => age(snap.time) > 90).length).toBeGreaterThan(0);
    try {
      // A backup that holds its lock for as long as its input stays open: until the test writes to the FIFO.
      const held = await web1.ssh(
        `rm -f /root/held.log /root/held.fifo && mkfifo /root/held.fifo && (setsid sh -c 'cat /root/held.fifo | { ${webRestic('backup --quiet --stdin --stdin-filename held.txt')}; }; echo "exit $?" >> /root/held.log' </dev/null >>/root/held.log 2>&1 &)`,
      );
      expect(held.exitCode, held.stderr).toBe(0);
      const locked = await backup1.ssh('for i in $(seq 300); do [ -n "$(ls /srv/restic/web1/locks)" ] && exit 0; sleep 0.1; done; exit 1');
      expect(locked.exitCode, 'web1 holds a lock').toBe(0);
      // The backup ends once the job waits; the job goes on at its next try.
      await expectRetentionToWait(backup1, 'web1', async () => {
        expect((await web1.ssh('echo held > /root/held.fifo')).exitCode).toBe(0);
      });
      // The backup that held the lock finished as it would have without retention.
      expect((await web1.ssh('for i in $(seq 300); do [ -s /root/held.log ] && break; sleep 0.1; done; cat /root/held.log')).stdout).toBe('exit 0\n');
      const after = await snapshotsOnBackupHost();
      expect(after.filter((snap) => age(snap.time) > 90)).toEqual([]);
      expect(after.length).toBe(before.filter((snap) => age(snap.time) <= 90).length + 1);
    } finally {
      // Whatever happened, the held backup ends.
      await web1.ssh('[ -p /root/held.fifo ] && timeout 5 sh -c "echo held > /root/held.fifo"; rm -f /root/held.fifo');
    }
  }, FLEET_TEST_TIMEOUT_MS);
});
