// A whole host lost and restored on real hosts: web1 serves a small site from /srv/www with a unit
// of its own and /etc changes, backs up to backup1 and is destroyed; a freshly installed machine
// (its own host key and machine-id) takes its address in the policy, and `upkeep restore web1
// --whole --onto ADDRESS` brings back its files byte for byte and the site runs again, while the
// machine keeps its own identity; the re-apply inside it passes web1's health gate. The test also
// prints the restore throughput against plain `restic restore` of the same snapshot on backup1,
// and that backup1's retention waits while the restore reads web1's repository. The tests build on
// each other in order.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRestore } from '../../lib/cli/restore.ts';
import { dumpCommand } from '../../lib/cli/restore-whole.ts';
import { applyPlan, entries } from './apply-helpers.ts';
import { expectRetentionToWait } from './retention-wait.ts';
import { runCommand } from './run-command.ts';
import { FLEET_HOOK_TIMEOUT_MS, FLEET_TEST_TIMEOUT_MS, fleetAvailable, startFleet, type TestFleet } from './testbed.ts';

const HOSTS = ['web1', 'backup1', 'fresh1'];
const PASSWORD_ENV = 'TEST_RESTIC_PASSWORD';
const EXEMPT = 'A throwaway test container: only its backups are under test here.';
const SITE_UNIT = ['[Unit]', 'Description=the small site of web1', '[Service]', 'ExecStart=/usr/bin/python3 -m http.server 8080 --bind 127.0.0.1 --directory /srv/www', '[Install]', 'WantedBy=multi-user.target', ''].join('\n');
/** web1's own files: the site, its unit and an /etc change; compared by sha256, mode and owner. */
const OWN_FILES = '/srv/www /etc/systemd/system/site.service /etc/site.conf';
const fingerprint = `find ${OWN_FILES} -type f -print0 | sort -z | xargs -0 stat -c '%a %U:%G %s %n' && find ${OWN_FILES} -type f -print0 | sort -z | xargs -0 sha256sum`;
const IDENTITY = 'cat /etc/machine-id /etc/hostname; sha256sum /etc/ssh/ssh_host_*_key /etc/fstab';

/** web1 is where `web1Host` is; backup1 receives and is exempt itself. */
function policy(fleet: TestFleet, web1Host: string): string {
  const host = (name: string, at: string, group: string, extra: string[] = []) => {
    const h = fleet.host(at);
    return [`  ${name}:`, `    group: ${group}`, `    address: ${h.address}`, `    hostKey: ${h.hostKey}`, ...extra, '    exempt:', `      updates: "${EXEMPT}"`, `      monitoring: "${EXEMPT}"`];
  };
  return [
    'name: wholerestore',
    'defaults:',
    '  backups:',
    '    schedule: "*-*-* 01:30:00"',
    '    retention: { daily: 90 }',
    '    paths: ["/etc", "/srv", "/var/lib/upkeep"]',
    '    repository: { host: backup1 }',
    `    password: { env: ${PASSWORD_ENV} }`,
    'groups:',
    '  staging: { staging: true }',
    '  production: { after: [staging] }',
    'hosts:',
    ...host('web1', web1Host, 'production'),
    ...host('backup1', 'backup1', 'staging', ['    roles: [backup]']),
    `      backups: "It holds the other hosts' repositories."`,
    '',
  ].join('\n');
}

describe.skipIf(!fleetAvailable('the whole-host restore tests (test/fleet/backup-whole-restore.test.ts)'))('a lost host restored whole onto a new machine', () => {
  let fleet: TestFleet;
  let work: string;
  let plans = 0;
  let lastPlan: string | undefined;
  let webFiles = '';
  let freshIdentity = '';
  let snapshot = '';

  async function plan(): Promise<string> {
    plans += 1;
    const out = join(work, `plan-${plans}`);
    const result = await runCommand(join(import.meta.dirname, '..', '..', 'bin', 'plan'), [join(work, 'fleet.yaml'), '--out', out, ...(lastPlan ? ['--base', lastPlan] : [])], { env: { ...process.env, NO_COLOR: '1' } });
    expect([0, 2], `${result.stdout}${result.stderr}`).toContain(result.exitCode);
    return out;
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'upkeep-whole-restore-'));
    process.env[PASSWORD_ENV] = randomBytes(18).toString('base64');
    fleet = await startFleet(HOSTS);
    writeFileSync(join(work, 'fleet.yaml'), policy(fleet, 'web1'));
  }, FLEET_HOOK_TIMEOUT_MS);
  afterAll(async () => {
    delete process.env[PASSWORD_ENV];
    await fleet?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  }, FLEET_HOOK_TIMEOUT_MS);

  it('applies the policy, sets up a site on web1 and backs it up', async () => {
    const dir = await plan();
    const run = await applyPlan(fleet, dir);
    expect(run.exitCode, run.stderr).toBe(0);
    lastPlan = dir;
    const web1 = fleet.host('web1');
    const setup = await web1.ssh(
      [
        'set -e',
        'mkdir -p /srv/www/data',
        'echo "<h1>web1</h1>" > /srv/www/index.html',
        // 64 MiB that do not compress or deduplicate: enough to measure restore throughput.
        'head -c 67108864 /dev/urandom > /srv/www/data/big.bin',
        'for i in $(seq 200); do head -c 4096 /dev/urandom > /srv/www/data/small-$i.bin; done',
        'chmod 640 /srv/www/data/small-7.bin && chown 1000:1000 /srv/www/data/small-8.bin',
        'echo "listen 8080" > /etc/site.conf',
        'cat > /etc/systemd/system/site.service',
        'systemctl daemon-reload && systemctl enable --now site.service',
      ].join('\n'),
      { input: SITE_UNIT, timeoutMs: 300_000 },
    );
    expect(setup.exitCode, setup.stderr).toBe(0);
    webFiles = (await web1.ssh(fingerprint)).stdout;
    expect(webFiles).toContain('/srv/www/data/big.bin');
    const backup = await web1.ssh('systemctl start upkeep-backup.service; echo "exit $?"', { timeoutMs: 600_000 });
    expect(backup.stdout, (await web1.ssh('journalctl -u upkeep-backup.service --no-pager | tail -20')).stdout).toBe('exit 0\n');
  }, FLEET_TEST_TIMEOUT_MS);

  it("reads web1's repository under a lock as its retention's user: retention waits for the read, which ends whole", async () => {
    const backup1 = fleet.host('backup1');
    try {
      // The read --whole runs on backup1 (dumpCommand), its tar taken by a reader that starts only
      // once the test writes to a FIFO: until then the read blocks, holding whatever lock it took.
      expect((await backup1.ssh('cat > /root/dump.sh', { input: dumpCommand('web1') })).exitCode).toBe(0);
      const held = await backup1.ssh(
        `rm -f /root/dump.log /root/go.fifo /root/dump.tar && mkfifo /root/go.fifo && (setsid bash -c 'set -o pipefail; sh /root/dump.sh | { cat /root/go.fifo >/dev/null; cat >/root/dump.tar; }; echo "exit $?" >>/root/dump.log' </dev/null >>/root/dump.log 2>&1 &)`,
      );
      expect(held.exitCode, held.stderr).toBe(0);
      const locked = await backup1.ssh('for i in $(seq 300); do [ -n "$(ls /srv/restic/web1/locks)" ] && exec stat -c %U /srv/restic/web1/locks/*; sleep 0.1; done; cat /root/dump.log; exit 1');
      expect(locked.stdout, 'the read holds a lock, as the repository user').toBe('restic-web1\n');
      // The reader starts once retention waits; the read ends whole, and retention goes on.
      await expectRetentionToWait(backup1, 'web1', async () => {
        expect((await backup1.ssh('echo go > /root/go.fifo')).exitCode).toBe(0);
      });
      const dumped = await backup1.ssh('for i in $(seq 1200); do grep -q "^exit " /root/dump.log && break; sleep 0.5; done; cat /root/dump.log', { timeoutMs: 900_000 });
      expect(dumped.stdout).toMatch(/restore: snapshot [0-9a-f]{8}\nexit 0\n$/);
      expect((await backup1.ssh('tar -tf /root/dump.tar | grep -cx "srv/www/data/big.bin"')).stdout).toBe('1\n');
      expect((await backup1.ssh('ls /srv/restic/web1/locks')).stdout, 'no lock is left behind').toBe('');
    } finally {
      await backup1.ssh('[ -p /root/go.fifo ] && timeout 5 sh -c "echo go > /root/go.fifo"; rm -f /root/go.fifo /root/dump.tar /root/dump.sh');
    }
  }, FLEET_TEST_TIMEOUT_MS);

  it('restores web1 whole onto a fresh machine: files byte for byte, the site runs, the machine keeps its identity, the re-apply passes', async () => {
    const fresh = fleet.host('fresh1');
    freshIdentity = (await fresh.ssh(IDENTITY)).stdout;
    expect(freshIdentity).toMatch(/^[0-9a-f]{32}\nfresh1\n/);
    expect((await fresh.ssh('test -e /srv/www')).exitCode).not.toBe(0);
    await fleet.host('web1').kill();

    writeFileSync(join(work, 'fleet.yaml'), policy(fleet, 'fresh1'));
    const dir = await plan();
    // The new machine's address only, with a wrong plan: refused before anything runs.
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const sink = (into: Buffer[]) => new Writable({ write: (chunk: Buffer, _e, done) => { into.push(Buffer.from(chunk)); done(); } });
    await expect(runRestore(['web1', '--whole', '--onto', fleet.host('backup1').address, '--plan', dir, '--identity', fleet.identityFile], { stdout: sink(out), stderr: sink(err) })).rejects.toThrow(/is not web1's address in the plan/);

    const journal = join(dir, 'restore-journal.json');
    const code = await runRestore(
      ['web1', '--whole', '--onto', fresh.address, '--plan', dir, '--identity', fleet.identityFile, '--', '--skip-soak', '--confirm-timeout', '20', '--journal', journal],
      { stdout: sink(out), stderr: sink(err) },
    );
    const said = Buffer.concat(out).toString() + Buffer.concat(err).toString();
    expect(code, said).toBe(0);
    snapshot = /restore: snapshot ([0-9a-f]{8})/.exec(said)?.[1] ?? '';
    expect(snapshot).toMatch(/^[0-9a-f]{8}$/);
    lastPlan = dir;

    expect((await fresh.ssh(fingerprint)).stdout).toBe(webFiles);
    expect((await fresh.ssh(IDENTITY)).stdout).toBe(freshIdentity);
    const site = await fresh.ssh('for i in $(seq 60); do systemctl is-active --quiet site.service && curl -fs http://127.0.0.1:8080/index.html && exit 0; sleep 1; done; systemctl status site.service; exit 1');
    expect(site.stdout, site.stderr).toContain('<h1>web1</h1>');
    expect((await fresh.ssh('systemctl is-enabled site.service')).stdout).toBe('enabled\n');
    // The re-apply: web1 passed its health gate on the new machine, which made its own backup key.
    const apply = await applyPlan(fleet, dir);
    expect(apply.exitCode, apply.stderr).toBe(0);
    expect(entries(apply, 'web1', 'apply').map((e) => e.result)).toEqual(['unchanged']);
    const backup = await fresh.ssh('systemctl start upkeep-backup.service; echo "exit $?"', { timeoutMs: 600_000 });
    expect(backup.stdout).toBe('exit 0\n');
  }, FLEET_TEST_TIMEOUT_MS);

  it('prints the throughput of --whole against plain restic restore of the same snapshot on backup1', async () => {
    const backup1 = fleet.host('backup1');
    const restic = `restic -r /srv/restic/web1 --password-file /etc/upkeep/restic/clients/web1.password --no-lock --no-cache`;
    const size = await backup1.ssh(`${restic} stats ${snapshot} --mode restore-size --json`, { timeoutMs: 300_000 });
    expect(size.exitCode, size.stderr).toBe(0);
    const bytes = (JSON.parse(size.stdout) as { total_size: number }).total_size;
    const plain = await backup1.ssh(`rm -rf /var/tmp/plain; s=$(date +%s%N); ${restic} restore ${snapshot} --target /var/tmp/plain >/dev/null; e=$(date +%s%N); rm -rf /var/tmp/plain; echo $(((e - s) / 1000000))`, { timeoutMs: 600_000 });
    expect(plain.exitCode, plain.stderr).toBe(0);
    const out: Buffer[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _e, done) => { out.push(Buffer.from(chunk)); done(); } });
    const start = process.hrtime.bigint();
    // The same transfer as before, without the re-apply: a journal-less apply is not what is timed.
    const { runWholeRestore } = await import('../../lib/cli/restore-whole.ts');
    const code = await runWholeRestore({ host: 'web1', onto: fleet.host('fresh1').address, plan: lastPlan as string, snapshot, identity: fleet.identityFile, transferOnly: true }, { stdout: sink, stderr: sink });
    const wholeSeconds = Number(process.hrtime.bigint() - start) / 1e9;
    expect(code, Buffer.concat(out).toString()).toBe(0);
    const mib = bytes / 1048576;
    const plainRate = mib / (Number(plain.stdout.trim()) / 1000);
    const wholeRate = mib / wholeSeconds;
    console.log(`restore throughput of web1's snapshot ${snapshot} (${mib.toFixed(1)} MiB): upkeep restore --whole ${wholeRate.toFixed(1)} MiB/s, plain restic restore on backup1 ${plainRate.toFixed(1)} MiB/s, ratio ${(wholeRate / plainRate).toFixed(2)}`);
    expect(wholeRate).toBeGreaterThan(0);
  }, FLEET_TEST_TIMEOUT_MS);
});
