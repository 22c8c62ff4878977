import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../lib/compile/generation.ts';
import { objectPath } from '../../lib/plan/plan-dir.ts';
import type { PlanDocument } from '../../lib/plan/plan-format.ts';

const root = join(import.meta.dirname, '..', '..');
const bin = join(root, 'bin', 'plan');
const work = mkdtempSync(join(tmpdir(), 'upkeep-plan-cli-'));
// A dozen plan directories of thousands of files: on a loaded machine that takes more than the default 10 s.
afterAll(() => rmSync(work, { recursive: true, force: true }), 120_000);

const CANARY = 'canary-secret-7f3a9c1e5b';

// No tofu/terraform on PATH: these tests are about the offline plan (the engine has its own tests).
const env = { ...process.env, PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, UPKEEP_TERRAFORM: '', RESTIC_PASSWORD: CANARY, ALERT_TOKEN: CANARY, HCLOUD_TOKEN: CANARY, NO_COLOR: '1' };

function plan(args: string[], cwd = root) {
  const r = spawnSync(bin, args, { cwd, env, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every file below `dir` as {relative path: content}. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = readFileSync(p, 'utf8');
    }
  };
  walk(dir);
  return out;
}

function withoutMetadata(files: Record<string, string>): Record<string, string> {
  const plan = JSON.parse(files['plan.json']);
  delete plan.metadata;
  // The policy path is relative to the working directory by design (relative secret files are read
  // beside it at apply time); here it leads out of the temporary directory into the checkout, so it
  // is the same from both directories but names the checkout. plan_id, which covers it, stays in.
  expect(plan.policy).toMatch(/^\.\.\/.*examples\/hosting\/fleet\.ts$/);
  delete plan.policy;
  return { ...files, 'plan.json': JSON.stringify(plan) };
}

describe('bin/plan', () => {
  const example = join(root, 'examples', 'hosting', 'fleet.ts');

  it('plans the hosting example: exit 2 (changes), a summary on stdout, the plan directory on disk', () => {
    const out = join(work, 'first');
    const r = plan([example, '--out', out]);
    // The example's only monitor has no heartbeat: said, not refused.
    expect(r.stderr).toBe(`bin/plan: warning: ${example}: hosts.monitor1.monitoring: the fleet's only monitor has no heartbeat (monitoring.heartbeat): if it stops, its checks stop alerting and nothing notices\n`);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/^8 host\(s\) to change, 0 unchanged/);
    const files = tree(out);
    expect(Object.keys(files)).toContain('plan.json');
    expect(Object.keys(files)).toContain('plan.md');
    expect(files['calendar.ics']).toContain('UID:window-web1@hosting.upkeep');
    const document = JSON.parse(files['plan.json']) as PlanDocument;
    expect(document.format_version).toBe(3);
    // Every planned content is in objects/ once, under its own hash; nothing else is.
    const contents = new Set(Object.values(document.hosts).flatMap((h) => h.files.flatMap((f) => (f.sha256 ? [f.sha256] : []))));
    expect(Object.keys(files).filter((f) => f.startsWith('objects/')).sort()).toEqual([...contents].map(objectPath).sort());
    for (const hash of contents) expect(sha256(files[objectPath(hash)]!)).toBe(hash);
    expect(contents.size).toBeLessThan(Object.values(document.hosts).reduce((n, h) => n + h.files.filter((f) => f.sha256).length, 0));
  });

  it('exits 0 when planned against its own result as the base', () => {
    const out = join(work, 'again');
    const r = plan([example, '--out', out, '--base', join(work, 'first')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^0 host\(s\) to change, 8 unchanged/);
    // Nothing changed for customers either: the same feed, no SEQUENCE bumped.
    expect(readFileSync(join(out, 'calendar.ics'), 'utf8')).toBe(readFileSync(join(work, 'first', 'calendar.ics'), 'utf8'));
  });

  it('gives byte-identical output from two different working directories', { timeout: 120_000 }, () => {
    const a = mkdtempSync(join(work, 'cwd-a-'));
    const b = mkdtempSync(join(work, 'cwd-b-'));
    expect(plan([example, '--out', join(a, 'out')], a).code).toBe(2);
    expect(plan([example, '--out', join(b, 'out')], b).code).toBe(2);
    const ta = withoutMetadata(tree(join(a, 'out')));
    const tb = withoutMetadata(tree(join(b, 'out')));
    expect(Object.keys(ta).length).toBeGreaterThan(50);
    expect(ta).toEqual(tb);
    for (const [path, text] of Object.entries(ta)) {
      expect(text.includes(work), `${path} holds an absolute path`).toBe(false);
      expect(text.includes(root), `${path} holds an absolute path`).toBe(false);
    }
  });

  it('never writes a secret value: the canary in the environment appears in no file and no output', () => {
    const out = join(work, 'canary');
    const r = plan([example, '--out', out]);
    expect(r.stdout + r.stderr).not.toContain(CANARY);
    for (const [path, text] of Object.entries(tree(out))) expect(text.includes(CANARY), path).toBe(false);
  });

  it('fails with exit 1 and writes nothing for a policy that does not exist', () => {
    const out = join(work, 'missing');
    const r = plan([join(work, 'nope.ts'), '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nope.ts');
    expect(existsSync(out)).toBe(false);
  });

  it('killed while writing, leaves the old plan directory; the next plan removes what the killed one left', { timeout: 120_000 }, async () => {
    const out = join(work, 'killed');
    expect(plan([example, '--out', out]).code).toBe(2);
    const before = tree(out);
    // A fleet large enough to be killed in the middle of writing it.
    const large = join(work, 'large-fleet.ts');
    writeFileSync(large, `import { generatedFleet } from ${JSON.stringify(join(root, 'test', 'fixtures', 'generated-fleet.ts'))};\nexport default generatedFleet(600);\n`);
    const child = spawn(bin, [large, '--out', out], { cwd: root, env, stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    // bin/plan execs node: the pid is the planner's, and so is the temporary directory's name.
    const temporary = join(work, `.killed.tmp-${child.pid}`, 'objects');
    const deadline = Date.now() + 60_000;
    while (!(existsSync(temporary) && readdirSync(temporary).length > 10) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    expect(tree(out)).toEqual(before);
    expect(readdirSync(work).filter((name) => name.startsWith('.killed.tmp-'))).toEqual([`.killed.tmp-${child.pid}`]);

    expect(plan([example, '--out', out]).code).toBe(2);
    expect(readdirSync(work).filter((name) => name.startsWith('.killed.'))).toEqual([]);
    // The same plan as before the kill, but for when it was made.
    const undated = (files: Record<string, string>) => ({ ...files, 'plan.json': JSON.stringify({ ...JSON.parse(files['plan.json']!), metadata: null }) });
    expect(undated(tree(out))).toEqual(undated(before));
  });

  describe('replaces an existing --out directory only when it is a plan directory or empty', () => {
    it('refuses a directory holding anything else (exit 1), naming it, and deletes and writes nothing', () => {
      const out = join(work, 'precious');
      mkdirSync(out);
      writeFileSync(join(out, 'thesis.tex'), 'four years of work\n');
      const r = plan([example, '--out', out]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`bin/plan: ${out}: is not empty and has no readable plan.json`);
      expect(r.stderr).toContain('refusing to replace it');
      expect(tree(out)).toEqual({ 'thesis.tex': 'four years of work\n' });
      expect(readdirSync(work).filter((name) => name.startsWith('.precious'))).toEqual([]);
    });

    it('refuses the project directory itself as --out (`--out .`, `--out "$PWD"`), which stays as it was', () => {
      const project = join(work, 'project');
      mkdirSync(join(project, 'src'), { recursive: true });
      writeFileSync(join(project, 'package.json'), '{}\n');
      writeFileSync(join(project, 'src', 'index.ts'), 'export {};\n');
      for (const out of [project, '.']) {
        const r = plan([example, '--out', out], project);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(`bin/plan: ${out}: is not empty and has no readable plan.json`);
        expect(tree(project)).toEqual({ 'package.json': '{}\n', 'src/index.ts': 'export {};\n' });
      }
    });

    it('refuses a plan directory that someone put another file into', () => {
      const out = join(work, 'plan-plus');
      expect(plan([example, '--out', out]).code).toBe(2);
      writeFileSync(join(out, 'notes.md'), 'mine\n');
      const r = plan([example, '--out', out]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${out}: holds notes.md, which a plan directory does not`);
      expect(readFileSync(join(out, 'notes.md'), 'utf8')).toBe('mine\n');
    });

    it('refuses a plan.json of an unknown format, and a file given as --out', () => {
      const out = join(work, 'future');
      mkdirSync(out);
      writeFileSync(join(out, 'plan.json'), '{"format_version": 99}\n');
      expect(plan([example, '--out', out]).stderr).toContain(`${out}: has a plan.json of unknown format 99`);
      expect(readFileSync(join(out, 'plan.json'), 'utf8')).toBe('{"format_version": 99}\n');
      const file = join(work, 'a-file');
      writeFileSync(file, 'keep\n');
      const r = plan([example, '--out', file]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${file}: exists and is not a directory`);
      expect(readFileSync(file, 'utf8')).toBe('keep\n');
    });

    it('re-plans into an earlier plan directory (with the journal bin/apply left there) and into an empty directory', () => {
      const out = join(work, 'replan');
      expect(plan([example, '--out', out]).code).toBe(2);
      writeFileSync(join(out, 'apply-journal.json'), '{}\n');
      const again = plan([example, '--out', out]);
      expect(again.stderr).not.toContain('error');
      expect(again.code).toBe(2);
      expect(existsSync(join(out, 'plan.json'))).toBe(true);
      const empty = join(work, 'empty');
      mkdirSync(empty);
      expect(plan([example, '--out', empty]).code).toBe(2);
      expect(existsSync(join(empty, 'plan.json'))).toBe(true);
    });
  });

  it('prints its usage for --help', () => {
    const r = plan(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Exit codes: 0 no changes, 2 changes present, 1 error');
  });
});
