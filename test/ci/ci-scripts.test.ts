// The scripts the example pipelines call (examples/ci/scripts), run for real against a FAKE gh and
// a FAKE curl: GitHub's and GitLab's APIs cannot exist here. commit-host-keys.sh runs against real
// git repositories (a bare one plays the forge's). The fakes record every command line
// (and the files handed to them) and answer with canned API output; the tests check the real
// command lines the scripts would run, and run each jq filter the scripts give gh through the real
// jq on the JSON GitHub's API answers with.

import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { programsAvailable } from '../programs.ts';

const SCRIPTS = join(import.meta.dirname, '..', '..', 'examples', 'ci', 'scripts');
const MARKER = '<!-- upkeep-plan: shop -->';
const PLAN_ID = 'a'.repeat(12) + '0123456789abcdef'.repeat(3) + 'b'.repeat(4);
const TOKEN = 'glpat-test-token-123';

/**
 * A FAKE gh or curl: appends its command line (one argument per line, then "--") to calls, keeps a
 * copy of every file given as body=@FILE, -H @FILE or --data-binary @FILE, and prints answer-N for
 * its Nth call (nothing when there is none).
 */
const FAKE = `#!/bin/sh
n=$(($(cat "$FAKE_DIR/count" 2>/dev/null || echo 0) + 1))
echo "$n" >"$FAKE_DIR/count"
{ echo "$(basename "$0")"; for a in "$@"; do printf '%s\\n' "$a"; done; echo --; } >>"$FAKE_DIR/calls"
prev=''
for a in "$@"; do
  case $prev/$a in
    */body=@*) cp "\${a#body=@}" "$FAKE_DIR/file-$n-body" ;;
    -H/@*) cp "\${a#@}" "$FAKE_DIR/file-$n-headers" ;;
    --data-binary/@*) cp "\${a#@}" "$FAKE_DIR/file-$n-data" ;;
  esac
  prev=$a
done
[ ! -f "$FAKE_DIR/answer-$n" ] || cat "$FAKE_DIR/answer-$n"
`;

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Each call: the program name, then its arguments. */
  readonly calls: string[][];
  /** A file the Nth call was handed (body, headers, data). */
  file(n: number, kind: 'body' | 'headers' | 'data'): string;
}

function run(script: string, args: string[], answers: string[] = [], env: Record<string, string> = {}): Run {
  const dir = mkdtempSync(join(tmpdir(), 'upkeep-ci-fake-'));
  for (const name of ['gh', 'curl']) {
    writeFileSync(join(dir, name), FAKE);
    chmodSync(join(dir, name), 0o755);
  }
  answers.forEach((a, i) => writeFileSync(join(dir, `answer-${i + 1}`), a));
  const r = spawnSync('/bin/sh', [join(SCRIPTS, script), ...args], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, FAKE_DIR: dir, GITHUB_REPOSITORY: 'ops/fleet', CI_API_V4_URL: 'https://gitlab.example.com/api/v4', CI_PROJECT_ID: '77', GITLAB_API_TOKEN: TOKEN, ...env },
  });
  let calls: string[][] = [];
  try {
    calls = readFileSync(join(dir, 'calls'), 'utf8').split('--\n').filter(Boolean).map((c) => c.trimEnd().split('\n'));
  } catch {
    calls = [];
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, calls, file: (n, kind) => readFileSync(join(dir, `file-${n}-${kind}`), 'utf8') };
}

function tempFile(name: string, content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'upkeep-ci-input-'));
  writeFileSync(join(dir, name), content);
  return join(dir, name);
}

/** The real jq on `json`, with the filter a script handed gh. */
function jq(filter: string, json: unknown): string {
  const r = spawnSync('jq', ['-r', filter], { input: JSON.stringify(json), encoding: 'utf8' });
  expect(r.stderr).toBe('');
  return r.stdout;
}

const comments = [
  { id: 11, body: 'LGTM' },
  { id: 12, body: `${MARKER}\n<!-- upkeep-plan-id: ${PLAN_ID} -->\n# upkeep plan` },
];

describe.skipIf(!programsAvailable('test/ci/ci-scripts.test.ts', ['shellcheck', 'jq']))('the example pipelines\' scripts', () => {
  const scripts = readdirSync(SCRIPTS).filter((f) => f.endsWith('.sh')).sort();

  it('are the four the pipelines call', () => {
    expect(scripts).toEqual(['commit-host-keys.sh', 'drift-issue.sh', 'reviewed-plan-id.sh', 'sticky-comment.sh']);
  });

  for (const script of scripts) {
    it(`${script} has no shellcheck finding at any severity`, () => {
      const r = spawnSync('shellcheck', ['--shell=sh', '--severity=style', join(SCRIPTS, script)], { encoding: 'utf8' });
      expect(r.stdout + r.stderr).toBe('');
      expect(r.status).toBe(0);
    });
  }

  describe('sticky-comment.sh', () => {
    const plan = tempFile('comment.md', '# upkeep plan\n\n**2 hosts change**\n');

    it('posts a new comment on GitHub when none holds the marker, the marker on its first line', () => {
      const r = run('sticky-comment.sh', ['github', '7', MARKER, plan], ['', 'https://github.com/ops/fleet/pull/7#issuecomment-99\n']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.calls).toEqual([
        ['gh', 'api', '--paginate', 'repos/ops/fleet/issues/7/comments', '--jq', `[.[] | select(.body | contains("${MARKER}"))][0].id // empty`],
        ['gh', 'api', '--method', 'POST', 'repos/ops/fleet/issues/7/comments', '-F', expect.stringMatching(/^body=@\//), '--jq', '.html_url'],
      ]);
      expect(r.file(2, 'body')).toBe(`${MARKER}\n# upkeep plan\n\n**2 hosts change**\n`);
      // The filter finds nothing in a pull request without a plan comment, and the comment in one with it.
      expect(jq(r.calls[0]![5]!, [comments[0]])).toBe('');
      expect(jq(r.calls[0]![5]!, comments)).toBe('12\n');
    });

    it('updates the comment that holds the marker on GitHub', () => {
      const r = run('sticky-comment.sh', ['github', '7', MARKER, plan], ['12\n', 'url\n']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.calls[1]!.slice(0, 5)).toEqual(['gh', 'api', '--method', 'PATCH', 'repos/ops/fleet/issues/comments/12']);
      expect(r.calls).toHaveLength(2);
    });

    it('cuts a plan longer than a comment may be, and says so', () => {
      const long = tempFile('long.md', `${'x'.repeat(70_000)}\n`);
      const r = run('sticky-comment.sh', ['github', '7', MARKER, long], ['', 'url\n']);
      expect(r.status, r.stderr).toBe(0);
      const body = r.file(2, 'body');
      expect(body.length).toBeLessThan(65_536);
      expect(body).toMatch(/\*\*Cut to fit a comment:\*\* the whole plan is in the job's artifacts\.\n$/);
    });

    it('updates the marked note of a GitLab merge request, the token only in a header file', () => {
      const notes = [{ id: 5, body: 'first' }, { id: 6, body: `${MARKER}\nold plan` }];
      const r = run('sticky-comment.sh', ['gitlab', '3', MARKER, plan], [JSON.stringify(notes)]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.calls).toEqual([
        ['curl', '-fsS', '-H', expect.stringMatching(/^@\//), 'https://gitlab.example.com/api/v4/projects/77/merge_requests/3/notes?per_page=100&sort=asc'],
        ['curl', '-fsS', '-X', 'PUT', '-H', expect.stringMatching(/^@\//), '--data-binary', expect.stringMatching(/^@\//), '-o', '/dev/null', 'https://gitlab.example.com/api/v4/projects/77/merge_requests/3/notes/6'],
      ]);
      expect(r.file(2, 'headers')).toBe(`PRIVATE-TOKEN: ${TOKEN}\nContent-Type: application/json\n`);
      expect(JSON.parse(r.file(2, 'data'))).toEqual({ body: `${MARKER}\n# upkeep plan\n\n**2 hosts change**\n` });
      expect(r.calls.flat().join(' ')).not.toContain(TOKEN);
    });

    it('posts a new note on GitLab when none holds the marker', () => {
      const r = run('sticky-comment.sh', ['gitlab', '3', MARKER, plan], ['[{"id":5,"body":"first"}]']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.calls[1]).toEqual(['curl', '-fsS', '-X', 'POST', '-H', expect.stringMatching(/^@\//), '--data-binary', expect.stringMatching(/^@\//), '-o', '/dev/null', 'https://gitlab.example.com/api/v4/projects/77/merge_requests/3/notes']);
    });

    it('refuses a marker that is not a hidden HTML comment and a number that is not one, calling nothing', () => {
      expect(run('sticky-comment.sh', ['github', '7', 'upkeep-plan', plan])).toMatchObject({ status: 2, calls: [] });
      expect(run('sticky-comment.sh', ['github', '7;id', MARKER, plan])).toMatchObject({ status: 2, calls: [] });
    });
  });

  describe('reviewed-plan-id.sh', () => {
    const sha = 'deadbeef'.repeat(5);

    it('prints the plan id of the merged pull request\'s plan comment on GitHub', () => {
      const r = run('reviewed-plan-id.sh', ['github', sha, MARKER], ['42\n', comments[1]!.body]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${PLAN_ID}\n`);
      expect(r.calls).toEqual([
        ['gh', 'api', `repos/ops/fleet/commits/${sha}/pulls`, '--jq', '.[0].number // empty'],
        ['gh', 'api', '--paginate', 'repos/ops/fleet/issues/42/comments', '--jq', `[.[] | select(.body | contains("${MARKER}"))][-1].body // empty`],
      ]);
      expect(jq(r.calls[0]![4]!, [{ number: 42 }])).toBe('42\n');
      expect(jq(r.calls[0]![4]!, [])).toBe('');
      expect(jq(r.calls[1]![5]!, comments)).toBe(`${comments[1]!.body}\n`);
    });

    it('fails when the commit belongs to no pull request, or its comment has no plan id: nothing was reviewed', () => {
      const noPr = run('reviewed-plan-id.sh', ['github', sha, MARKER], ['']);
      expect(noPr.status).toBe(1);
      expect(noPr.stderr).toMatch(/belongs to no pull request/);
      const noId = run('reviewed-plan-id.sh', ['github', sha, MARKER], ['42\n', `${MARKER}\n# a plan without its id`]);
      expect(noId.status).toBe(1);
      expect(noId.stdout).toBe('');
      expect(noId.stderr).toMatch(/no plan comment with a plan id/);
    });

    it('reads the merge request of the commit and its marked note on GitLab', () => {
      const notes = [{ id: 1, body: 'looks good' }, { id: 2, body: comments[1]!.body }];
      const r = run('reviewed-plan-id.sh', ['gitlab', sha, MARKER], ['[{"iid":9}]', JSON.stringify(notes)]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${PLAN_ID}\n`);
      expect(r.calls.map((c) => c.at(-1))).toEqual([
        `https://gitlab.example.com/api/v4/projects/77/repository/commits/${sha}/merge_requests`,
        'https://gitlab.example.com/api/v4/projects/77/merge_requests/9/notes?per_page=100&sort=asc',
      ]);
    });

    it('refuses a commit id that is not one', () => {
      expect(run('reviewed-plan-id.sh', ['github', 'main; id', MARKER])).toMatchObject({ status: 2, calls: [] });
    });
  });

  describe('drift-issue.sh', () => {
    const planDir = (md: string) => {
      const dir = mkdtempSync(join(tmpdir(), 'upkeep-ci-plan-'));
      writeFileSync(join(dir, 'plan.md'), md);
      return dir;
    };
    const drifted = planDir('# upkeep plan\n\n## Drift\n\n- web1: `/etc/x` (content)\n');

    it('does nothing without drift', () => {
      expect(run('drift-issue.sh', ['github', 'shop', planDir('# upkeep plan\n\nNo changes.\n')])).toMatchObject({ status: 0, calls: [], stdout: '' });
    });

    it('opens an issue on GitHub when none is open for the fleet', () => {
      const r = run('drift-issue.sh', ['github', 'shop', drifted], ['']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.calls).toEqual([
        ['gh', 'issue', 'list', '--state', 'open', '--search', '"upkeep: drift on fleet shop" in:title', '--json', 'number,title', '--jq', '[.[] | select(.title == "upkeep: drift on fleet shop")][0].number // empty'],
        ['gh', 'issue', 'create', '--title', 'upkeep: drift on fleet shop', '--body-file', expect.stringMatching(/^\//)],
      ]);
      expect(jq(r.calls[0]![10]!, [{ number: 3, title: 'upkeep: drift on fleet shop2' }, { number: 4, title: 'upkeep: drift on fleet shop' }])).toBe('4\n');
    });

    it('comments on the open issue on GitHub', () => {
      const r = run('drift-issue.sh', ['github', 'shop', drifted], ['4\n']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.calls[1]).toEqual(['gh', 'issue', 'comment', '4', '--body-file', expect.stringMatching(/^\//)]);
    });

    it('opens an issue on GitLab with the plan as its description, or notes on the open one', () => {
      const open = run('drift-issue.sh', ['gitlab', 'shop', drifted], ['[]']);
      expect(open.status, open.stderr).toBe(0);
      expect(open.calls[0]).toEqual(['curl', '-fsS', '-G', '-H', expect.stringMatching(/^@\//), '--data-urlencode', 'state=opened', '--data-urlencode', 'in=title', '--data-urlencode', 'search=upkeep: drift on fleet shop', 'https://gitlab.example.com/api/v4/projects/77/issues']);
      expect(open.calls[1]!.at(-1)).toBe('https://gitlab.example.com/api/v4/projects/77/issues');
      expect(JSON.parse(open.file(2, 'data'))).toEqual({ title: 'upkeep: drift on fleet shop', description: readFileSync(join(drifted, 'plan.md'), 'utf8') });
      const noted = run('drift-issue.sh', ['gitlab', 'shop', drifted], ['[{"iid":8,"title":"upkeep: drift on fleet shop"}]']);
      expect(noted.calls[1]!.at(-1)).toBe('https://gitlab.example.com/api/v4/projects/77/issues/8/notes');
    });
  });

  describe.skipIf(!programsAvailable('test/ci/ci-scripts.test.ts', ['git']))('commit-host-keys.sh', () => {
    const KEYS = 'upkeep-host-keys.json';
    const git = (cwd: string, ...args: string[]) => {
      const r = spawnSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@invalid', ...args], { cwd, encoding: 'utf8' });
      expect(r.status, `git ${args.join(' ')}: ${r.stderr}`).toBe(0);
      return r.stdout.trim();
    };
    /** A forge's repository (bare) with the policy on main, and a pipeline's checkout of it, detached as CI checks out. */
    function forge(): { remote: string; checkout: string } {
      const dir = mkdtempSync(join(tmpdir(), 'upkeep-ci-git-'));
      const remote = join(dir, 'remote.git');
      git(dir, 'init', '--quiet', '--bare', '--initial-branch=main', remote);
      const seed = join(dir, 'seed');
      git(dir, 'clone', '--quiet', remote, seed);
      writeFileSync(join(seed, 'upkeep.ts'), 'export default {};\n');
      git(seed, 'add', '.');
      git(seed, 'commit', '--quiet', '-m', 'policy');
      git(seed, 'push', '--quiet', 'origin', 'HEAD:main');
      const checkout = join(dir, 'checkout');
      git(dir, 'clone', '--quiet', remote, checkout);
      git(checkout, 'checkout', '--quiet', '--detach');
      return { remote, checkout };
    }
    const commit = (checkout: string) => spawnSync('/bin/sh', [join(SCRIPTS, 'commit-host-keys.sh'), KEYS, 'main'], { cwd: checkout, encoding: 'utf8' });

    it('commits the keys bin/apply rotated to the branch, marked so that the push starts no pipeline', () => {
      const { remote, checkout } = forge();
      writeFileSync(join(checkout, KEYS), '{"web1":{"bootstrap":"ssh-ed25519 AAAA1","rotated":"ssh-ed25519 AAAA2"}}\n');
      const r = commit(checkout);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain('committed to main');
      expect(git(remote, 'log', '-1', '--format=%s', 'main')).toBe('upkeep: host keys rotated by bin/apply [skip ci]');
      expect(git(remote, 'show', `main:${KEYS}`)).toContain('ssh-ed25519 AAAA2');
    });

    it('commits nothing when the keys did not change, or bin/apply wrote none', () => {
      const { remote, checkout } = forge();
      const head = git(remote, 'rev-parse', 'main');
      const none = commit(checkout);
      expect(none.status, none.stderr).toBe(0);
      expect(none.stdout).toContain('nothing to commit');
      writeFileSync(join(checkout, KEYS), '{}\n');
      expect(commit(checkout).status).toBe(0);
      const again = commit(checkout);
      expect(again.stdout).toContain('unchanged');
      expect(git(remote, 'rev-list', '--count', `${head}..main`)).toBe('1');
    });

    it('rebases onto a commit that landed on the branch meanwhile, keeping it', () => {
      const { remote, checkout } = forge();
      const other = join(checkout, '..', 'other');
      git(join(checkout, '..'), 'clone', '--quiet', remote, other);
      writeFileSync(join(other, 'README'), 'merged meanwhile\n');
      git(other, 'add', '.');
      git(other, 'commit', '--quiet', '-m', 'merged meanwhile');
      git(other, 'push', '--quiet', 'origin', 'HEAD:main');
      writeFileSync(join(checkout, KEYS), '{}\n');
      const r = commit(checkout);
      expect(r.status, r.stderr).toBe(0);
      expect(git(remote, 'log', '--format=%s', 'main').split('\n').slice(0, 2)).toEqual(['upkeep: host keys rotated by bin/apply [skip ci]', 'merged meanwhile']);
    });

    it('refuses a branch that is not a name, committing nothing', () => {
      const { remote, checkout } = forge();
      writeFileSync(join(checkout, KEYS), '{}\n');
      const r = spawnSync('/bin/sh', [join(SCRIPTS, 'commit-host-keys.sh'), KEYS, '--force'], { cwd: checkout, encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(git(remote, 'rev-list', '--count', 'main')).toBe('1');
    });
  });
});
