// `upkeep COMMAND` is bin/COMMAND under one name: same help, same output, same exit codes.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'upkeep-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function run(program: 'upkeep' | 'plan' | 'apply', args: string[]) {
  // No tofu/terraform on PATH: the plan is the offline one, the same for every run.
  const env = { ...process.env, PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, UPKEEP_TERRAFORM: '', NO_COLOR: '1' };
  const r = spawnSync(join(root, 'bin', program), args, { cwd: root, env, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('upkeep', () => {
  it('lists its commands for --help', () => {
    const r = run('upkeep', ['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: upkeep COMMAND/);
    expect(r.stdout).toMatch(/^ {2}plan +\S/m);
    expect(r.stdout).toMatch(/^ {2}apply +\S/m);
    expect(r.stdout).toMatch(/^ {2}status +\S/m);
  });

  for (const command of ['plan', 'apply'] as const) {
    it(`prints the help of bin/${command} for \`upkeep ${command} --help\``, () => {
      const r = run('upkeep', [command, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(run(command, ['--help']).stdout);
    });
  }

  it('runs update waves: `upkeep update --help` explains them, a wrong kind or a missing plan directory is refused', () => {
    const help = run('upkeep', ['update', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: upkeep update security\|routine PLAN_DIR/);
    expect(run('upkeep', ['--help']).stdout).toMatch(/^ {2}update +\S/m);
    const kind = run('upkeep', ['update', 'everything', work]);
    expect(kind.code).toBe(1);
    expect(kind.stderr).toBe('upkeep update: expected security or routine, got "everything" (see upkeep update --help)\n');
    const missing = run('upkeep', ['update', 'security', join(work, 'no-such-plan')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^upkeep update: .*no-such-plan is not a plan directory/);
  });

  it('fails with exit 1 and names an unknown command on stderr', () => {
    const r = run('upkeep', ['deploy']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('upkeep: unknown command "deploy": expected one of plan, apply, update, status, restore (see upkeep --help)\n');
  });

  it('prints its usage on stderr and exits 1 when no command is given', () => {
    const r = run('upkeep', []);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^Usage: upkeep COMMAND/);
  });

  it('prints the version of package.json for --version', () => {
    const r = run('upkeep', ['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version}\n`);
  });

  it('plans the hosting example exactly as bin/plan does: same summary, plan id and exit code', () => {
    const example = join(root, 'examples', 'hosting', 'fleet.ts');
    const viaUpkeep = run('upkeep', ['plan', example, '--out', join(work, 'upkeep')]);
    const viaBin = run('plan', [example, '--out', join(work, 'bin')]);
    expect(viaUpkeep.stderr).toBe(viaBin.stderr);
    expect(viaUpkeep.stderr).toContain("the fleet's only monitor has no heartbeat");
    expect(viaUpkeep.code).toBe(2);
    expect(viaUpkeep.code).toBe(viaBin.code);
    const planId = (r: { stdout: string }) => /plan `([0-9a-f]{12})`/.exec(r.stdout)?.[1];
    expect(planId(viaUpkeep)).toMatch(/^[0-9a-f]{12}$/);
    expect(planId(viaUpkeep)).toBe(planId(viaBin));
    expect(viaUpkeep.stdout.replaceAll(join(work, 'upkeep'), 'OUT')).toBe(viaBin.stdout.replaceAll(join(work, 'bin'), 'OUT'));
    const fullId = (dir: string) => JSON.parse(readFileSync(join(work, dir, 'plan.json'), 'utf8')).plan_id;
    expect(fullId('upkeep')).toBe(fullId('bin'));
  });

  it("names the command in a command's error: `upkeep plan: ...`, exit 1", () => {
    const r = run('upkeep', ['plan', join(work, 'nope.ts'), '--out', join(work, 'missing')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^upkeep plan: .*nope\.ts/);
  });
});
