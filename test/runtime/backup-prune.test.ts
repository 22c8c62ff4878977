// backup-prune.sh with the real restic on a local repository: the retention the backup host applies
// to a client's append-only repository. The fleet test (test/fleet/backup-restore.test.ts) runs
// it as the systemd unit on a real backup host; this one covers the rules quickly.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { keepWithin } from '../../lib/compile/backups.ts';
import { programsAvailable } from '../programs.ts';
import { runScript, runScriptAsync, tempDir } from './run-script.ts';

const DAY = 86_400_000;

function repository() {
  const dir = tempDir();
  const data = join(dir, 'data');
  mkdirSync(data);
  writeFileSync(join(data, 'file'), 'content\n');
  writeFileSync(join(dir, 'password'), 'correct horse battery staple\n');
  const env = { RESTIC_REPOSITORY: join(dir, 'repo'), RESTIC_PASSWORD_FILE: join(dir, 'password'), RESTIC_CACHE_DIR: join(dir, 'cache') };
  const restic = (...args: string[]) => {
    const run = spawnSync('restic', args, { encoding: 'utf8', env: { ...process.env, ...env } });
    if (run.status !== 0) throw new Error(`restic ${args.join(' ')}: ${run.stderr}`);
    return run.stdout;
  };
  restic('init');
  /** A snapshot dated `daysAgo` days before now (negative: in the future); its short id. */
  const backup = (daysAgo: number) => {
    const time = new Date(Date.now() - daysAgo * DAY).toISOString().replace('T', ' ').slice(0, 19);
    return (JSON.parse(restic('backup', '--json', '--time', time, data).trim().split('\n').pop()!) as { snapshot_id: string }).snapshot_id.slice(0, 8);
  };
  const snapshots = () => (JSON.parse(restic('snapshots', '--json')) as { short_id: string; time: string }[]).map((s) => s.short_id).sort();
  const prune = (rules: string[]) => runScript('backup-prune.sh', [], { ...env, UPKEEP_KEEP_WITHIN: rules.join(' ') });
  /** As prune, without blocking this process (for a run that waits on a lock this process holds). */
  const pruneAsync = (rules: string[], extra: Record<string, string>, onStderr?: (stderr: string) => void) =>
    runScriptAsync('backup-prune.sh', [], { ...env, UPKEEP_KEEP_WITHIN: rules.join(' '), ...extra }, onStderr);
  const locks = () => readdirSync(join(env.RESTIC_REPOSITORY, 'locks'));
  /**
   * A backup that holds the repository's lock until its input ends (release()), as a client's long
   * backup does; resolves once the lock is there. restic is this process's own child, so that a
   * killed one is reaped at once and its lock is then stale.
   */
  const holdLock = async () => {
    const holder = spawn('restic', ['backup', '--stdin', '--stdin-filename', 'held.txt'], { env: { ...process.env, ...env }, stdio: ['pipe', 'ignore', 'ignore'] });
    const exited = new Promise<number | null>((resolve) => holder.on('exit', (code) => resolve(code)));
    for (let i = 0; i < 400 && locks().length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(locks()).toHaveLength(1);
    // Once, and quietly if restic is gone already.
    holder.stdin.on('error', () => {});
    let released = false;
    const release = () => {
      if (!released) holder.stdin.end('held\n');
      released = true;
    };
    return { exited, release, kill: () => holder.kill('SIGKILL') };
  };
  return { backup, snapshots, prune, pruneAsync, holdLock, locks };
}

describe('keepWithin: retention as --keep-within rules', () => {
  it('keeps every snapshot of the daily horizon and thins out only beyond it', () => {
    expect(keepWithin({ daily: 90, weekly: 0, monthly: 0, yearly: 0 })).toEqual(['--keep-within', '90d']);
    expect(keepWithin({ daily: 30, weekly: 8, monthly: 12, yearly: 2 })).toEqual(['--keep-within', '30d', '--keep-within-weekly', '56d', '--keep-within-monthly', '12m', '--keep-within-yearly', '2y']);
    expect(() => keepWithin({ daily: 0, weekly: 0, monthly: 0, yearly: 0 })).toThrow(/forget every snapshot/);
  });
});

describe.skipIf(!programsAvailable('test/runtime/backup-prune.test.ts', ['restic']))('backup-prune.sh with the real restic', { timeout: 180_000 }, () => {
  it('removes exactly the snapshots older than 90 days before the newest, and keeps a real one beside a forged one of the same day', () => {
    const r = repository();
    const ids = new Map([0, 30, 60, 89, 91, 100, 120].map((d) => [d, r.backup(d)]));
    const forged = r.backup(60 - 1 / 24);
    const run = r.prune(keepWithin({ daily: 90, weekly: 0, monthly: 0, yearly: 0 }));
    expect(run.status, run.stderr).toBe(0);
    expect(r.snapshots()).toEqual([...[0, 30, 60, 89].map((d) => ids.get(d)!), forged].sort());
  });

  it('forgets nothing while a snapshot is dated in the future, naming it', () => {
    const r = repository();
    const old = r.backup(200);
    const now = r.backup(0);
    const future = r.backup(-365);
    const run = r.prune(['--keep-within', '90d']);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`snapshot ${future} is dated`);
    expect(run.stderr).toContain('in the future');
    expect(r.snapshots()).toEqual([old, now, future].sort());
  });

  describe("while a client's backup holds the repository's lock", () => {
    const rules = ['--keep-within', '90d'];

    it('waits for the backup to end, then forgets', async () => {
      const r = repository();
      const old = r.backup(200);
      const now = r.backup(0);
      const held = await r.holdLock();
      // The backup ends once the job has found it holding the lock and said it waits.
      const run = await r.pruneAsync(rules, { UPKEEP_LOCK_RETRY: '1' }, (stderr) => stderr.includes('trying again') && held.release());
      held.release();
      expect(run.status, run.stderr).toBe(0);
      expect(run.stderr).toContain("is locked (by a client's backup, its restore drill or a restore reading it); trying again in 1s");
      expect(await held.exited).toBe(0);
      const kept = r.snapshots();
      expect(kept).toContain(now);
      expect(kept).not.toContain(old);
      expect(kept).toHaveLength(2);
    });

    it('gives up when the lock is still held after UPKEEP_LOCK_WAIT, forgetting nothing', async () => {
      const r = repository();
      const old = r.backup(200);
      const held = await r.holdLock();
      try {
        const run = await r.pruneAsync(rules, { UPKEEP_LOCK_RETRY: '1', UPKEEP_LOCK_WAIT: '3' });
        expect(run.status).toBe(1);
        expect(run.stderr).toContain('is still locked after 3s of waiting; nothing was forgotten');
        expect(r.snapshots()).toEqual([old]);
      } finally {
        held.kill();
        await held.exited;
      }
    });

    it('removes the stale lock of a backup that was killed and forgets at once', async () => {
      const r = repository();
      r.backup(200);
      const now = r.backup(0);
      const held = await r.holdLock();
      held.kill();
      await held.exited;
      // Killed outright, restic could not remove its lock. It is stale (its process is gone): the
      // job's restic unlock removes such locks, where restic itself does not pass over them.
      expect(r.locks()).toHaveLength(1);
      const run = await r.pruneAsync(rules, { UPKEEP_LOCK_RETRY: '1', UPKEEP_LOCK_WAIT: '30' });
      expect(run.status, run.stderr).toBe(0);
      expect(run.stderr).not.toContain('trying again');
      expect(r.snapshots()).toEqual([now]);
    });
  });
});
