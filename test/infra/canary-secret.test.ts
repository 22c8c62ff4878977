// A canary Hetzner token proves that the token never reaches the synthesized stack, plan.json,
// plan.md, the plan directory, bin/plan's output, or the engine's command lines and logs; it
// reaches the engine only through its environment (seen by the FAKE engine as a fingerprint).

import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SecretValues } from '../../lib/plan/secrets.ts';
import { TerraformEngine, engineSecretEnv } from '../../lib/engine/terraform.ts';
import { TOKEN_ENV, infraFleetSpec } from '../fixtures/infra-fleet.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const CANARY = `canary-${createHash('sha256').update(String(process.pid)).digest('hex').slice(0, 24)}`;

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe('a canary Hetzner token', () => {
  const work = mkdtempSync(join(tmpdir(), 'upkeep-canary-'));
  const policy = join(work, 'fleet.ts');
  writeFileSync(policy, `import { infraFleetSpec } from ${JSON.stringify(join(ROOT, 'test/fixtures/infra-fleet.ts'))};\nexport default infraFleetSpec();\n`);
  const out = join(work, 'out');
  const env = { ...process.env, [TOKEN_ENV]: CANARY, HCLOUD_TOKEN: CANARY, NO_COLOR: '1' };
  let stdout = '';
  try {
    stdout = execFileSync(join(ROOT, 'bin', 'plan'), [policy, '--out', out], { cwd: work, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    // Exit code 2 means "changes present", which a first plan always has.
    const e = error as { status: number; stdout: string; stderr: string };
    if (e.status !== 2) throw new Error(`bin/plan failed (${e.status}): ${e.stderr}`);
    stdout = e.stdout + e.stderr;
  }

  it('is in no file bin/plan writes, stack included, nor in what it prints', () => {
    const files = filesUnder(out);
    expect(files.map((f) => f.slice(out.length + 1))).toEqual(expect.arrayContaining(['plan.json', 'plan.md', 'terraform/main.tf.json']));
    for (const file of files) expect(readFileSync(file, 'utf8'), file).not.toContain(CANARY);
    expect(stdout).toContain('Infrastructure:');
    expect(stdout).not.toContain(CANARY);
  });

  it('reaches the FAKE engine only through its environment, and no log or command line', async () => {
    const bin = join(work, 'bin');
    mkdirSync(bin);
    symlinkSync(join(ROOT, 'test/fixtures/fake-terraform'), join(bin, 'tofu'));
    const record = join(work, 'calls.log');
    const secrets = new SecretValues();
    const secretEnv = engineSecretEnv(infraFleetSpec().provisioning!, { env, baseDir: work }, secrets);
    const log: string[] = [];
    const stackDir = join(work, 'engine', 'terraform');
    mkdirSync(stackDir, { recursive: true });
    const engine = new TerraformEngine({
      dir: stackDir,
      env: { PATH: `${bin}:/usr/bin:/bin`, FAKE_TERRAFORM_RECORD: record, FAKE_TERRAFORM_LEAK: '1' },
      secretEnv,
      secrets,
      log: (line) => log.push(line),
    });
    await engine.init();
    await engine.apply().catch(() => undefined);
    const calls = readFileSync(record, 'utf8');
    expect(calls).toContain(createHash('sha256').update(CANARY).digest('hex'));
    expect(calls).not.toContain(CANARY);
    expect(log).toContain('Error: 401 unauthorized for token [secret]');
    expect(log.join('\n')).not.toContain(CANARY);
  });
});
