// `bin/plan --base git:REF`: a pull request planned against main without a stored plan directory.
// A real git repository made here holds the YAML example; the branch shortens backup retention.

import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { programsAvailable } from '../programs.ts';

const root = join(import.meta.dirname, '..', '..');

/** The example's one expected warning (its only monitor has no heartbeat), taken off before stderr is compared. */
const withoutMonitorWarning = (stderr: string) => stderr.replace(/^bin\/plan: warning: .*: the fleet's only monitor has no heartbeat .*\n/m, '');

describe.skipIf(!programsAvailable('bin/plan --base git:REF', ['git']))('bin/plan --base git:REF', { timeout: 180_000 }, () => {
  let work: string;
  let repo: string;
  /** TMPDIR of bin/plan: where its temporary worktree goes, and must be gone from afterwards. */
  let temp: string;

  const git = (...args: string[]) => {
    const r = spawnSync('git', args, { cwd: repo, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com' } });
    expect(r.status, r.stderr).toBe(0);
    return r.stdout;
  };
  const plan = (...args: string[]) => {
    const env = { ...process.env, NO_COLOR: '1', TMPDIR: temp };
    const r = spawnSync(join(root, 'bin', 'plan'), args, { cwd: repo, env, encoding: 'utf8' });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const policy = () => readFileSync(join(repo, 'fleet.yaml'), 'utf8');

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'upkeep-git-base-'));
    repo = join(work, 'repo');
    temp = join(work, 'tmp');
    mkdirSync(repo);
    mkdirSync(temp);
    git('init', '--quiet', '--initial-branch=main');
    copyFileSync(join(root, 'examples', 'yaml', 'fleet.yaml'), join(repo, 'fleet.yaml'));
    git('add', 'fleet.yaml');
    git('commit', '--quiet', '-m', 'the fleet as agreed');
    // The pull request: retention shortened from 90 to 30 daily snapshots, not committed yet.
    expect(policy()).toContain('      daily: 90\n');
    writeFileSync(join(repo, 'fleet.yaml'), policy().replace('      daily: 90\n', '      daily: 30\n'));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  // (tsx keeps its cache in TMPDIR too.)
  const leftovers = () => readdirSync(temp).filter((name) => name.startsWith('upkeep-base-'));
  const worktrees = () => git('worktree', 'list', '--porcelain').split('\n').filter((l) => l.startsWith('worktree '));

  it('plans against the policy at the ref: only what the branch changes, and the contract it weakens', () => {
    const r = plan('fleet.yaml', '--out', 'out', '--base', 'git:main');
    expect(withoutMonitorWarning(r.stderr)).toBe('');
    expect(r.code).toBe(2);
    // Retention runs on the backup host: only its files change, while the promise weakens on every host it keeps.
    expect(r.stdout).toMatch(/^1 host\(s\) to change, 4 unchanged · 0 file\(s\) to create, \d+ to update, 0 to delete/);
    expect(r.stdout).toContain('WARNING: this change weakens the maintenance contract (see out/plan.md)');
    const md = readFileSync(join(repo, 'out', 'plan.md'), 'utf8');
    expect(md.split('\n')[0]).toBe('<!-- upkeep-plan fleet=shop -->');
    expect(md).toContain('> **WARNING: this change WEAKENS the maintenance promise');
    expect(md).toMatch(/- \*\*backup retention shortened\*\* on \d hosts \(.*\): 90 daily, 0 weekly, 0 monthly, 0 yearly → 30 daily, 0 weekly, 0 monthly, 0 yearly/);
    // The temporary worktree is gone, from git and from disk.
    expect(worktrees()).toEqual([`worktree ${repo}`]);
    expect(leftovers()).toEqual([]);
  });

  it('exits 0 against the ref when the policy is as it was there', () => {
    git('stash', '--quiet');
    try {
      const r = plan('fleet.yaml', '--out', 'out', '--base', 'git:main', '--json');
      expect(withoutMonitorWarning(r.stderr)).toBe('');
      expect(r.code).toBe(0);
      const summary = JSON.parse(r.stdout);
      expect(summary.summary.hostsChanged).toBe(0);
      expect(summary.comment_marker).toBe('<!-- upkeep-plan fleet=shop -->');
      expect(summary.contract_weakened).toBe(false);
    } finally {
      git('stash', 'pop', '--quiet');
    }
  });

  it('fails naming the ref when it does not exist, and leaves nothing behind', () => {
    const r = plan('fleet.yaml', '--out', 'out2', '--base', 'git:no-such-branch');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^bin\/plan: .*git rev-parse --verify --end-of-options no-such-branch\^\{commit\}.* failed/m);
    expect(worktrees()).toEqual([`worktree ${repo}`]);
    expect(leftovers()).toEqual([]);
  });

  it('fails naming the ref when the policy there is not valid, and removes the worktree', () => {
    git('checkout', '--quiet', '-b', 'broken', 'main');
    writeFileSync(join(repo, 'fleet.yaml'), policy().replace('      daily: 30\n', '      daily: 30\n      dialy: 3\n'));
    git('commit', '--quiet', '-am', 'a typo');
    git('checkout', '--quiet', 'main');
    writeFileSync(join(repo, 'fleet.yaml'), policy().replace('      daily: 90\n', '      daily: 30\n'));
    const r = plan('fleet.yaml', '--out', 'out3', '--base', 'git:broken');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^bin\/plan: the policy at broken \([0-9a-f]{12}\) is not valid: fleet\.yaml:\d+/m);
    expect(r.stderr).toContain('dialy');
    expect(worktrees()).toEqual([`worktree ${repo}`]);
    expect(leftovers()).toEqual([]);
  });

  it('refuses a ref that looks like an option', () => {
    const r = plan('fleet.yaml', '--out', 'out4', '--base', 'git:--output=/tmp/x');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--base git:REF needs a git ref');
  });
});
