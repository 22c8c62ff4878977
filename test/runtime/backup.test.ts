import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderEnvFile } from '../../lib/compile/env-file.ts';
import { compileHost } from '../../lib/compile/host.ts';
import type { ResolvedHost } from '../../lib/policy/resolved.ts';
import { resolvedFleet } from '../fixtures/resolved-fleet.ts';
import { RUNTIME_SOURCE, runScript, runScriptAsync, tempDir } from './run-script.ts';
import { programsAvailable } from '../programs.ts';

/** A host-like layout in a temporary directory: data to protect, a local repository, the job's config. */
function setup() {
  const dir = tempDir();
  const data = join(dir, 'data');
  mkdirSync(join(data, 'etc'), { recursive: true });
  mkdirSync(join(data, 'cache'), { recursive: true });
  for (let i = 0; i < 30; i++) writeFileSync(join(data, 'etc', `file-${i}.conf`), `setting ${i} = ${'x'.repeat(i * 100)}\n`);
  writeFileSync(join(data, 'cache', 'big.bin'), 'not worth keeping');
  const config = join(dir, 'restic');
  mkdirSync(config);
  writeFileSync(join(config, 'backup.password'), 'correct horse battery staple\n');
  writeFileSync(join(config, 'backup.paths'), `${data}\n`);
  writeFileSync(join(config, 'backup.excludes'), `${data}/cache\n`);
  writeFileSync(
    join(config, 'backup.env'),
    renderEnvFile('test', {
      RESTIC_REPOSITORY: join(dir, 'repo'),
      RESTIC_PASSWORD_FILE: join(config, 'backup.password'),
      RESTIC_CACHE_DIR: join(dir, 'cache'),
      UPKEEP_KEEP_DAILY: 90,
      UPKEEP_KEEP_WEEKLY: 0,
      UPKEEP_KEEP_MONTHLY: 0,
      UPKEEP_KEEP_YEARLY: 0,
      UPKEEP_CHECK_SUBSET: '50%',
      UPKEEP_DRILL_FILES: 5,
    }),
  );
  const env = { UPKEEP_BACKUP_CONFIG: join(config, 'backup.env'), UPKEEP_STATE_DIR: join(dir, 'state') };
  const status = (job: string) => readFileSync(join(dir, 'state/backup', `${job}.status`), 'utf8').trim().split(' ');
  const restic = (...args: string[]) =>
    spawnSync('restic', ['-r', join(dir, 'repo'), '--password-file', join(config, 'backup.password'), '--no-cache', ...args], { encoding: 'utf8' });
  /** Zeroes the first half of every pack file (the blobs; the pack header sits at the end), as a failing disk would. */
  const corrupt = () =>
    spawnSync('sh', ['-c', 'for f in "$1"/data/*/*; do dd if=/dev/zero of="$f" bs=1 count=$(($(stat -c %s "$f") / 2)) conv=notrunc 2>/dev/null; done', 'sh', join(dir, 'repo')]);
  /**
   * Holds the repository's exclusive lock, as the backup host's retention job does while it prunes,
   * until release(): `restic key passwd` holds it while it waits for the new password on its input
   * (and, given none, gives up and removes its lock). Resolves once the lock is there.
   */
  const holdExclusiveLock = async () => {
    const holder = spawn('restic', ['-r', join(dir, 'repo'), '--password-file', join(config, 'backup.password'), '--no-cache', 'key', 'passwd'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const exited = new Promise<number | null>((resolve) => holder.on('exit', (code) => resolve(code)));
    const locks = () => readdirSync(join(dir, 'repo', 'locks'));
    for (let i = 0; i < 400 && locks().length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(locks()).toHaveLength(1);
    holder.stdin.on('error', () => {});
    return { exited, release: () => holder.stdin.end() };
  };
  return { data, config, repo: join(dir, 'repo'), env, status, restic, corrupt, holdExclusiveLock };
}

/** unshare's options for a mount namespace of this test's own, where /mnt can be a fresh tmpfs (as root, or as a mapped root). */
const PRIVATE_MOUNTS = process.getuid?.() === 0 ? ['--mount'] : ['--user', '--map-root-user', '--mount'];

/** Whether this machine lets a test mount a file system of its own on /mnt, which no other process sees. */
function privateMountsAvailable(what: string): boolean {
  if (!programsAvailable(what, ['restic', 'unshare'])) return false;
  const probe = spawnSync('unshare', [...PRIVATE_MOUNTS, 'mount', '-t', 'tmpfs', 'upkeep-probe', '/mnt'], { encoding: 'utf8' });
  if (probe.status === 0) return true;
  console.warn(`!!! SKIPPING ${what}: cannot mount a tmpfs on /mnt in a private mount namespace (unshare ${PRIVATE_MOUNTS.join(' ')}: ${probe.stderr.trim()})`);
  return false;
}

// restic derives its key with scrypt on every run, which takes seconds on a small machine.
describe.skipIf(!programsAvailable('test/runtime/backup.test.ts', ['restic']))('backup.sh with the real restic and a local repository', { timeout: 120_000 }, () => {
  it('initialises the repository on the first backup, keeps the excludes out, and records success', () => {
    const t = setup();
    const run = runScript('backup.sh', ['backup'], t.env);
    expect(run.stderr).not.toContain('Fatal');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('initialising it');
    expect(t.status('backup').slice(1, 2)).toEqual(['ok']);
    const listed = t.restic('ls', 'latest').stdout;
    expect(listed).toContain(`${t.data}/etc/file-29.conf`);
    expect(listed).not.toContain('big.bin');

    const again = runScript('backup.sh', ['backup'], t.env);
    expect(again.status).toBe(0);
    expect(again.stdout).not.toContain('initialising');
    expect(JSON.parse(t.restic('snapshots', '--json').stdout)).toHaveLength(2);
  });

  it.skipIf(!privateMountsAvailable('backups of a volume mounted under /mnt (test/runtime/backup.test.ts)'))(
    'backs up a data volume mounted at /mnt/HC_Volume_<id>, as Hetzner mounts them, with the compiled excludes, but not the local repository beside it',
    () => {
      // GIVEN a host whose policy backs up /mnt, with its repository on a disk mounted there too
      const fleet = resolvedFleet();
      const web1 = fleet.hosts.find((h) => h.name === 'web1')!;
      const local: ResolvedHost = { ...web1, backups: { ...web1.backups!, paths: ['/mnt'], repository: '/mnt/backup/web1', repositoryHost: undefined } };
      const compiled = compileHost(resolvedFleet([local]), local);
      const content = (path: string) => compiled.files.find((f) => f.path === path)!.content!;
      const config = tempDir({ 'backup.paths': content('/etc/upkeep/restic/backup.paths'), 'backup.excludes': content('/etc/upkeep/restic/backup.excludes'), 'backup.password': 'correct horse battery staple\n' });
      writeFileSync(join(config, 'backup.env'), renderEnvFile('test', { RESTIC_REPOSITORY: '/mnt/backup/web1', RESTIC_PASSWORD_FILE: join(config, 'backup.password'), RESTIC_CACHE_DIR: join(config, 'cache') }));
      // WHEN it backs up, in a mount namespace of its own where a tmpfs stands in for the volume
      const script = [
        'set -eu',
        'mount -t tmpfs upkeep-test-volume /mnt',
        'mkdir -p /mnt/HC_Volume_4242/shop',
        'echo "order 1" >/mnt/HC_Volume_4242/shop/orders.db',
        '/bin/sh "$1/backup.sh" backup',
        'echo "--- snapshot"',
        'restic -r /mnt/backup/web1 --password-file "$2/backup.password" --no-cache ls latest',
      ].join('\n');
      const run = spawnSync('unshare', [...PRIVATE_MOUNTS, 'sh', '-c', script, 'sh', RUNTIME_SOURCE, config], {
        encoding: 'utf8',
        env: { ...process.env, UPKEEP_BACKUP_CONFIG: join(config, 'backup.env'), UPKEEP_STATE_DIR: join(config, 'state') },
      });
      // THEN the volume's files are in the snapshot, and the repository did not copy itself
      expect(run.status, run.stderr).toBe(0);
      const listed = run.stdout.split('--- snapshot\n')[1]!.split('\n');
      expect(listed).toContain('/mnt/HC_Volume_4242/shop/orders.db');
      expect(listed.filter((p) => p.startsWith('/mnt/backup/'))).toEqual([]);
    },
  );

  it('fails, naming it, when a listed path does not exist (an unmounted volume, a typo), and saves no snapshot', () => {
    const t = setup();
    expect(runScript('backup.sh', ['backup'], t.env).status).toBe(0);
    // GIVEN the policy lists a volume's directory that is not there (not mounted), and a symlink to nothing
    const gone = join(t.data, '..', 'volume-not-mounted');
    const dangling = join(t.data, '..', 'dangling');
    symlinkSync(join(t.data, '..', 'nowhere'), dangling);
    writeFileSync(join(t.config, 'backup.paths'), `${t.data}\n${gone}\n${dangling}\n`);
    // WHEN the backup runs
    const run = runScript('backup.sh', ['backup'], t.env);
    // THEN it fails and says which, in its status too (the freshness check reports that line)
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`backup: listed path(s) do not exist: ${gone} ${dangling}; nothing was backed up`);
    expect(run.stderr).toContain(`backup: ${dangling} is a symlink to ${join(t.data, '..', 'nowhere')}, which does not exist`);
    expect(t.status('backup').slice(1).join(' ')).toBe(`failed listed path(s) do not exist: ${gone} ${dangling}; nothing was backed up`);
    expect(JSON.parse(t.restic('snapshots', '--json').stdout)).toHaveLength(1);
  });

  it('backs up what a listed symlink points to, and the link itself, so that the data is in the snapshot', () => {
    const t = setup();
    // GIVEN /srv/data is a symlink to the volume that holds the data
    const volume = join(t.data, '..', 'HC_Volume_4242');
    mkdirSync(join(volume, 'shop'), { recursive: true });
    writeFileSync(join(volume, 'shop', 'orders.db'), 'order 1\n');
    const link = join(t.data, '..', 'srv-data');
    symlinkSync(join(volume, 'shop'), link);
    writeFileSync(join(t.config, 'backup.paths'), `${link}/\n`);
    // WHEN the backup runs
    const run = runScript('backup.sh', ['backup'], t.env);
    // THEN the data behind the link is in the snapshot, under the path where it lives, and the link too
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain(`backup: ${link}/ is a symlink; backing up ${join(volume, 'shop')}, where it points, as well`);
    const listed = t.restic('ls', '--long', 'latest').stdout.split('\n');
    expect(listed.some((l) => l.endsWith(` ${link} -> ${join(volume, 'shop')}`))).toBe(true);
    expect(listed.some((l) => l.endsWith(` ${join(volume, 'shop', 'orders.db')}`))).toBe(true);
  });

  it('restore drill restores a sample of the latest snapshot, verifies it and writes its status', () => {
    const t = setup();
    expect(runScript('backup.sh', ['backup'], t.env).status).toBe(0);
    const drill = runScript('backup.sh', ['drill'], t.env);
    expect(drill.stderr).toBe('');
    expect(drill.stdout).toContain('restored and verified 5 files');
    expect(t.status('drill').slice(1, 5)).toEqual(['ok', 'restored', 'and', 'verified']);
  });

  it('restore drill fails, and says so in its status, when the repository data is corrupted', () => {
    const t = setup();
    expect(runScript('backup.sh', ['backup'], t.env).status).toBe(0);
    t.corrupt();
    const drill = runScript('backup.sh', ['drill'], t.env);
    expect(drill.status).not.toBe(0);
    expect(t.status('drill')[1]).toBe('failed');
  });

  it('forget keeps daily snapshots as the retention says and check reads data back', () => {
    const t = setup();
    expect(runScript('backup.sh', ['backup'], t.env).status).toBe(0);
    const forget = runScript('backup.sh', ['forget'], t.env);
    expect(forget.status).toBe(0);
    expect(forget.stdout).toContain('keep');
    const check = runScript('backup.sh', ['check'], t.env);
    expect(check.status).toBe(0);
    expect(check.stdout).toContain('read 50.0% of data packs');
  });

  it('check records a failure in its status when the repository contains errors, where the last ok stayed', () => {
    const t = setup();
    expect(runScript('backup.sh', ['backup'], t.env).status).toBe(0);
    expect(runScript('backup.sh', ['check'], t.env).status).toBe(0);
    expect(t.status('check')[1]).toBe('ok');
    t.corrupt();
    const check = runScript('backup.sh', ['check'], t.env);
    expect(check.status).toBe(1);
    expect(check.stderr).toContain('Fatal: repository contains errors');
    expect(t.status('check').slice(1).join(' ')).toBe("failed the repository contains errors (restic check exited 1); see the job's journal");
  });

  it('forget records a failure in its status when restic fails, where the last ok stayed', () => {
    const t = setup();
    expect(runScript('backup.sh', ['backup'], t.env).status).toBe(0);
    expect(runScript('backup.sh', ['forget'], t.env).status).toBe(0);
    expect(t.status('forget')[1]).toBe('ok');
    // The password no longer opens the repository: no key is left.
    rmSync(join(t.repo, 'keys'), { recursive: true });
    const forget = runScript('backup.sh', ['forget'], t.env);
    expect(forget.status).toBe(1);
    expect(t.status('forget').slice(1).join(' ')).toBe("failed restic forget --prune exited 1; see the job's journal");
  });

  describe("while the backup host's retention job holds the repository's exclusive lock", () => {
    it('a backup waits for the lock to go, then saves its snapshot', async () => {
      const t = setup();
      expect(runScript('backup.sh', ['backup'], t.env).status).toBe(0);
      const held = await t.holdExclusiveLock();
      // The retention job ends once the backup has found the repository locked and said it waits.
      const run = await runScriptAsync('backup.sh', ['backup'], { ...t.env, UPKEEP_LOCK_RETRY: '1' }, (stderr) => stderr.includes('trying again') && held.release());
      held.release();
      await held.exited;
      expect(run.status, run.stderr).toBe(0);
      expect(run.stderr).toContain("backup: the repository is locked by another process (the backup host's retention job, or a restore reading it); trying again in 1s");
      expect(t.status('backup').slice(1).join(' ')).toBe('ok snapshot saved');
      expect(JSON.parse(t.restic('snapshots', '--json').stdout)).toHaveLength(2);
    });

    it('a restore drill that cannot lock the repository within UPKEEP_LOCK_WAIT says so, never that verification failed', async () => {
      const t = setup();
      expect(runScript('backup.sh', ['backup'], t.env).status).toBe(0);
      const held = await t.holdExclusiveLock();
      try {
        const drill = await runScriptAsync('backup.sh', ['drill'], { ...t.env, UPKEEP_LOCK_RETRY: '1', UPKEEP_LOCK_WAIT: '3' });
        expect(drill.status).toBe(1);
        const [result, ...detail] = t.status('drill').slice(1);
        expect(result).toBe('failed');
        expect(detail.join(' ')).toBe("could not lock the repository: another process (the backup host's retention job, or a restore reading it) still held it after 3s of waiting");
      } finally {
        held.release();
        await held.exited;
      }
    });
  });

  it('key creates the client ssh key pair once and prints its public half', () => {
    const t = setup();
    const keyEnv = readFileSync(t.env.UPKEEP_BACKUP_CONFIG, 'utf8') + `UPKEEP_SSH_KEY='${t.env.UPKEEP_STATE_DIR}/backup/id_ed25519'\n`;
    writeFileSync(t.env.UPKEEP_BACKUP_CONFIG, keyEnv);
    const first = runScript('backup.sh', ['key'], t.env);
    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(/^ssh-ed25519 AAAA\S+ upkeep-backup@/);
    expect(runScript('backup.sh', ['key'], t.env).stdout).toBe(first.stdout);
  });

  it('key answers while a restic job holds the lock, so the applier never waits for a backup', () => {
    const t = setup();
    writeFileSync(t.env.UPKEEP_BACKUP_CONFIG, readFileSync(t.env.UPKEEP_BACKUP_CONFIG, 'utf8') + `UPKEEP_SSH_KEY='${t.env.UPKEEP_STATE_DIR}/backup/id_ed25519'\n`);
    mkdirSync(join(t.env.UPKEEP_STATE_DIR, 'backup'), { recursive: true });
    const lock = join(t.env.UPKEEP_STATE_DIR, 'backup', 'restic.lock');
    // flock holds the lock while it runs `backup.sh key`: a key behind the lock would time out.
    const held = spawnSync('flock', [lock, 'timeout', '20', '/bin/sh', join(RUNTIME_SOURCE, 'backup.sh'), 'key'], { encoding: 'utf8', env: { ...process.env, ...t.env } });
    expect(held.status, held.stderr).toBe(0);
    expect(held.stdout).toMatch(/^ssh-ed25519 /);
  });

  it('restore puts a deleted file back in place from the latest snapshot, byte for byte', () => {
    const t = setup();
    expect(runScript('backup.sh', ['backup'], t.env).status).toBe(0);
    const file = join(t.data, 'etc', 'file-7.conf');
    const before = readFileSync(file);
    rmSync(file);
    const run = runScript('backup.sh', ['restore', file], t.env);
    expect(run.status, run.stderr).toBe(0);
    expect(readFileSync(file).equals(before)).toBe(true);
  });

  it('restore finds paths whose names restic escapes in its JSON (& < > and quotes), and puts them back byte for byte', () => {
    const t = setup();
    const dir = join(t.data, 'R&D <2026>');
    mkdirSync(dir);
    const file = join(dir, 'a "quoted" & <tagged> name.txt');
    writeFileSync(file, 'findings\n');
    expect(runScript('backup.sh', ['backup'], t.env).status).toBe(0);
    rmSync(dir, { recursive: true });
    const one = runScript('backup.sh', ['restore', file], t.env);
    expect(one.status, one.stderr).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe('findings\n');
    rmSync(dir, { recursive: true });
    const whole = runScript('backup.sh', ['restore', dir, join(t.data, 'etc', 'file-3.conf')], t.env);
    expect(whole.status, whole.stderr).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe('findings\n');
    // A path that only begins like one the snapshot holds is not taken for it.
    const prefix = runScript('backup.sh', ['restore', join(t.data, 'R&D')], t.env);
    expect(prefix.status).toBe(1);
    expect(prefix.stderr).toContain(`does not hold: ${join(t.data, 'R&D')};`);
  });

  it('restore --at takes the newest snapshot up to that time that holds the path, and never a newer one without it', () => {
    const t = setup();
    const file = join(t.data, 'etc', 'file-7.conf');
    const at = (hoursAgo: number) => new Date(Date.now() - hoursAgo * 3_600_000).toISOString().replace('T', ' ').slice(0, 19);
    const snapshotOf = (out: string) => (JSON.parse(out.trim().split('\n').pop()!) as { snapshot_id: string }).snapshot_id.slice(0, 8);
    expect(t.restic('init').status).toBe(0);
    writeFileSync(file, 'version 1\n');
    const first = snapshotOf(t.restic('backup', '--json', '--time', at(48), t.data).stdout);
    writeFileSync(file, 'version 2\n');
    const second = snapshotOf(t.restic('backup', '--json', '--time', at(24), t.data).stdout);
    // Deleted by mistake, and the nightly backup ran since: the newest snapshot lacks the file.
    rmSync(file);
    expect(runScript('backup.sh', ['backup'], t.env).status).toBe(0);

    const byDate = runScript('backup.sh', ['restore', '--at', at(36), file], t.env);
    expect(byDate.status, byDate.stderr).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe('version 1\n');
    expect(byDate.stdout).toContain(`restored from snapshot ${first} of `);

    rmSync(file);
    const newest = runScript('backup.sh', ['restore', file], t.env);
    expect(newest.status, newest.stderr).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe('version 2\n');
    expect(newest.stdout).toContain(`restored from snapshot ${second} of `);
    expect(newest.stderr).toMatch(/does not hold: .*file-7\.conf; looking at older ones/);
    expect(newest.stdout).toContain('1 newer snapshot(s) did not hold the paths');

    const elsewhere = join(tempDir(), 'restored');
    const to = runScript('backup.sh', ['restore', '--snapshot', first, '--to', elsewhere, file], t.env);
    expect(to.status, to.stderr).toBe(0);
    expect(readFileSync(join(elsewhere, file), 'utf8')).toBe('version 1\n');
    expect(readFileSync(file, 'utf8')).toBe('version 2\n');

    const none = runScript('backup.sh', ['restore', '--at', at(72), file], t.env);
    expect(none.status).toBe(1);
    expect(none.stderr).toContain('no snapshot up to');
  });

  it('restore refuses a path that is now a symlink another user planted: restic would write through it as root', () => {
    const t = setup();
    expect(runScript('backup.sh', ['backup'], t.env).status).toBe(0);
    const shadow = join(tempDir(), 'shadow');
    writeFileSync(shadow, 'root:secret\n');
    const file = join(t.data, 'etc', 'file-7.conf');
    rmSync(file);
    symlinkSync(shadow, file);
    const run = runScript('backup.sh', ['restore', file], t.env);
    expect(readFileSync(shadow, 'utf8')).toBe('root:secret\n');
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`refusing to write ${file}: it is a symlink`);
    expect(run.stderr).toContain(`restore: ${file} is not restored in place`);
  });

  it('restore refuses a tree where another user can write a directory (and so plant a symlink while restic restores)', () => {
    const t = setup();
    expect(runScript('backup.sh', ['backup'], t.env).status).toBe(0);
    const dir = join(t.data, 'etc');
    chmodSync(dir, 0o777);
    rmSync(join(dir, 'file-7.conf'));
    const run = runScript('backup.sh', ['restore', t.data], t.env);
    expect(existsSync(join(dir, 'file-7.conf'))).toBe(false);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`${dir} is owned by or writable by another user`);
  });

  it('restore drill writes nothing beside its private directory in /tmp, where another user could plant a symlink first', () => {
    const t = setup();
    expect(runScript('backup.sh', ['backup'], t.env).status).toBe(0);
    // The attacker knows the drill's directory name (a FAKE mktemp makes it predictable here; on a
    // host, listing /tmp shows it) and plants symlinks beside it to a file only root may change.
    const tmp = tempDir();
    const shadow = join(tempDir(), 'shadow');
    writeFileSync(shadow, 'root:secret\n');
    const known = join(tmp, 'upkeep-drill.KNOWN');
    for (const name of ['list', 'restored', 'tmp']) symlinkSync(shadow, `${known}.${name}`);
    mkdirSync(join(tmp, 'bin'));
    writeFileSync(join(tmp, 'bin', 'mktemp'), `#!/bin/sh\nmkdir -m 0700 '${known}' && echo '${known}'\n`);
    chmodSync(join(tmp, 'bin', 'mktemp'), 0o755);
    const drill = runScript('backup.sh', ['drill'], { ...t.env, PATH: `${join(tmp, 'bin')}:${process.env.PATH}` });
    expect(readFileSync(shadow, 'utf8')).toBe('root:secret\n');
    expect(drill.status, drill.stderr).toBe(0);
    expect(drill.stdout).toContain('restored and verified 5 files');
  });

  it('restore refuses relative paths and paths restic would read as patterns', () => {
    const t = setup();
    for (const path of ['etc/file-1.conf', `${t.data}/etc/file-*.conf`]) {
      const run = runScript('backup.sh', ['restore', path], t.env);
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(/not an absolute path|pattern characters/);
    }
  });
});
