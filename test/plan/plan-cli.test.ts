import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const bin = join(root, 'bin', 'plan');
const work = mkdtempSync(join(tmpdir(), 'upkeep-plan-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const CANARY = 'canary-secret-7f3a9c1e5b';

function plan(args: string[], cwd = root) {
  // No tofu/terraform on PATH: these tests are about the offline plan (the engine has its own tests).
  const path = `${dirname(process.execPath)}:/usr/bin:/bin`;
  const env = { ...process.env, PATH: path, UPKEEP_TERRAFORM: '', RESTIC_PASSWORD: CANARY, ALERT_TOKEN: CANARY, HCLOUD_TOKEN: CANARY, NO_COLOR: '1' };
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
    expect(r.stderr).toBe('');
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/^8 host\(s\) to change, 0 unchanged/);
    const files = tree(out);
    expect(Object.keys(files)).toContain('plan.json');
    expect(Object.keys(files)).toContain('plan.md');
    expect(Object.keys(files).filter((f) => f.startsWith('hosts/web1/etc/systemd/system/')).length).toBeGreaterThan(5);
    expect(JSON.parse(files['plan.json']).format_version).toBe(2);
  });

  it('exits 0 when planned against its own result as the base', () => {
    const out = join(work, 'again');
    const r = plan([example, '--out', out, '--base', join(work, 'first')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^0 host\(s\) to change, 8 unchanged/);
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

  it('prints its usage for --help', () => {
    const r = plan(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Exit codes: 0 no changes, 2 changes present, 1 error');
  });
});
