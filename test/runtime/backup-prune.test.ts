// backup-prune.sh with the real restic on a local repository: the retention the backup host applies
// to a client's append-only repository. The fleet test (test/fleet/backup-restore.test.ts) runs
// it as the systemd unit on a real backup host; this one covers the rules quickly.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { keepWithin } from '../../lib/compile/backups.ts';
import { programsAvailable } from '../programs.ts';
import { runScript, tempDir } from './run-script.ts';

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
  return { backup, snapshots, prune };
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
});
