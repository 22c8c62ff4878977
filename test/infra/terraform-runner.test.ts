// The engine runner against a FAKE engine (test/fixtures/fake-terraform): no tofu or terraform can
// download providers here, so the fake records its command lines and answers with canned output.
// PATH is always set to the fake's directory plus /usr/bin:/bin, so an installed engine is never used.

import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EngineError, EngineNotFoundError, TerraformEngine, engineSecretEnv, findEngine } from '../../lib/engine/terraform.ts';
import { inEngineWorkdir } from '../../lib/engine/engine-workdir.ts';
import { SecretError, SecretValues } from '../../lib/plan/secrets.ts';
import { infraFleetSpec } from '../fixtures/infra-fleet.ts';

const FAKE_ENGINE = resolve('test/fixtures/fake-terraform');
const CANARY = 'canary-hcloud-token-5f1d0c7e9a';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
/** The saved plan lives in a private temporary directory, its name random: PRIVATE/tfplan in expectations. */
const SAVED_PLAN_PATH = /\/\S*\/upkeep-engine-[^/\s"]+\/tfplan/g;
const privatePlan = (text: string) => text.replace(SAVED_PLAN_PATH, 'PRIVATE/tfplan');

interface Sandbox {
  readonly stackDir: string;
  readonly env: NodeJS.ProcessEnv;
  canned(sub: string, parts: { stdout?: string; stderr?: string; exit?: number }): void;
  calls(): { name: string; cwd: string; tokenSha: string; pgSha: string; automation: string; argv: string }[];
}

/** A temporary bin directory whose `names` all point at the FAKE engine. */
function sandbox(names: readonly string[] = ['terraform']): Sandbox {
  const root = mkdtempSync(join(tmpdir(), 'upkeep-engine-test-'));
  const bin = join(root, 'bin');
  const stackDir = join(root, 'plan', 'terraform');
  const cannedDir = join(root, 'canned');
  const record = join(root, 'calls.log');
  for (const dir of [bin, stackDir, cannedDir]) mkdirSync(dir, { recursive: true });
  for (const name of names) symlinkSync(FAKE_ENGINE, join(bin, name));
  writeFileSync(record, '');
  return {
    stackDir,
    env: { PATH: `${bin}:/usr/bin:/bin`, FAKE_TERRAFORM_RECORD: record, FAKE_TERRAFORM_CANNED: cannedDir },
    canned(sub, parts) {
      if (parts.stdout !== undefined) writeFileSync(join(cannedDir, `${sub}.stdout`), parts.stdout);
      if (parts.stderr !== undefined) writeFileSync(join(cannedDir, `${sub}.stderr`), parts.stderr);
      if (parts.exit !== undefined) writeFileSync(join(cannedDir, `${sub}.exit`), String(parts.exit));
    },
    calls() {
      return readFileSync(record, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [name, cwd, tokenSha, pgSha, automation, ...argv] = line.split('|');
          return { name, cwd, tokenSha, pgSha, automation, argv: privatePlan(argv.join('|')) };
        });
    },
  };
}

const SHOW_JSON = JSON.stringify({
  format_version: '1.2',
  resource_changes: [
    { address: 'hcloud_server.web3', mode: 'managed', type: 'hcloud_server', change: { actions: ['create'] } },
    { address: 'hcloud_server.web1', mode: 'managed', type: 'hcloud_server', change: { actions: ['update'] } },
    { address: 'hcloud_server.mail1', mode: 'managed', type: 'hcloud_server', change: { actions: ['delete', 'create'] } },
    { address: 'hcloud_primary_ip.mail1', mode: 'managed', type: 'hcloud_primary_ip', change: { actions: ['create', 'delete'] } },
    { address: 'hcloud_volume.old', mode: 'managed', type: 'hcloud_volume', change: { actions: ['delete'] } },
    { address: 'hcloud_firewall.base', mode: 'managed', type: 'hcloud_firewall', change: { actions: ['no-op'] } },
    { address: 'data.hcloud_image.debian', mode: 'data', type: 'hcloud_image', change: { actions: ['read'] } },
  ],
});

const OUTPUT_JSON = JSON.stringify({
  upkeep_hosts: {
    sensitive: false,
    type: ['object', {}],
    value: {
      web1: { address: '203.0.113.10', host_key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKl1\n', port: 22 },
      monitor1: { address: '203.0.113.11', host_key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKl2', port: 2222 },
    },
  },
});

describe('finding the engine', () => {
  it('prefers UPKEEP_TERRAFORM, then tofu, then terraform on PATH', () => {
    const both = sandbox(['tofu', 'terraform']);
    expect(findEngine(both.env).name).toBe('tofu');
    expect(findEngine({ ...both.env, UPKEEP_TERRAFORM: FAKE_ENGINE }).path).toBe(FAKE_ENGINE);
    expect(findEngine(sandbox(['terraform']).env)).toMatchObject({ name: 'terraform' });
  });

  it('without an engine, says how to install one', () => {
    const none = sandbox([]);
    expect(() => findEngine(none.env)).toThrow(EngineNotFoundError);
    expect(() => findEngine(none.env)).toThrow(/no Terraform engine found \(neither tofu nor terraform is on PATH\): install OpenTofu \(https:\/\/opentofu\.org.*\) or Terraform .*UPKEEP_TERRAFORM/);
    expect(() => findEngine({ ...none.env, UPKEEP_TERRAFORM: '/nonexistent/tofu' })).toThrow(/UPKEEP_TERRAFORM=\/nonexistent\/tofu is not an executable file/);
  });
});

describe('running the FAKE engine', () => {
  it('runs init, plan, show, apply and output with the expected command lines in the stack directory', async () => {
    const box = sandbox(['tofu']);
    box.canned('plan', { exit: 2 });
    box.canned('show', { stdout: SHOW_JSON });
    box.canned('output', { stdout: OUTPUT_JSON });
    const log: string[] = [];
    const engine = new TerraformEngine({ dir: box.stackDir, env: box.env, secretEnv: { TF_VAR_hcloud_token: CANARY }, log: (l) => log.push(l) });
    await engine.init();
    const plan = await engine.plan();
    await engine.apply();
    const outputs = await engine.outputs();

    expect(box.calls().map((c) => c.argv)).toEqual([
      'init -input=false -no-color',
      'plan -input=false -no-color -out=PRIVATE/tfplan -detailed-exitcode',
      'show -json -no-color PRIVATE/tfplan',
      'apply -input=false -no-color PRIVATE/tfplan',
      'output -json -no-color',
    ]);
    for (const call of box.calls()) {
      expect(call).toMatchObject({ name: 'tofu', cwd: box.stackDir, tokenSha: sha256(CANARY), automation: '1' });
    }
    expect(log.filter((l) => l.startsWith('$ ')).map(privatePlan)).toEqual(box.calls().map((c) => `$ tofu ${c.argv}`));
    expect(plan.changes).toBe(true);
    expect(plan.diff).toEqual({
      add: ['hcloud_server.web3'],
      change: ['hcloud_server.web1'],
      replace: ['hcloud_primary_ip.mail1', 'hcloud_server.mail1'],
      destroy: ['hcloud_volume.old'],
    });
    expect(outputs.hosts).toEqual({
      web1: { address: '203.0.113.10', hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKl1', port: 22 },
      monitor1: { address: '203.0.113.11', hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKl2', port: 2222 },
    });
    expect(outputs.raw).toEqual(JSON.parse(OUTPUT_JSON));
  });

  it('reads plan exit code 0 as no changes', async () => {
    const box = sandbox();
    box.canned('plan', { exit: 0 });
    box.canned('show', { stdout: JSON.stringify({ resource_changes: [] }) });
    const plan = await new TerraformEngine({ dir: box.stackDir, env: box.env }).plan();
    expect(plan).toEqual({ changes: false, diff: { add: [], change: [], replace: [], destroy: [] } });
  });

  it('fails a plan that exits 1 with the command, the exit code and the last stderr lines', async () => {
    const box = sandbox();
    const stderr = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join('\n');
    box.canned('plan', { exit: 1, stderr: `${stderr}\nError: Invalid provider configuration\n` });
    const error = await new TerraformEngine({ dir: box.stackDir, env: box.env }).plan().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EngineError);
    const e = error as EngineError;
    expect(privatePlan(e.command)).toBe('terraform plan -input=false -no-color -out=PRIVATE/tfplan -detailed-exitcode');
    expect(e.exitCode).toBe(1);
    expect(e.message).toMatch(/^terraform plan .* failed with exit code 1 \(the engine reported an error\):\nline 12\n/);
    expect(e.stderrTail.split('\n')).toHaveLength(20);
    expect(e.stderrTail.endsWith('Error: Invalid provider configuration')).toBe(true);
  });

  it('treats any exit code other than 0 as a failure outside plan', async () => {
    const box = sandbox();
    box.canned('init', { exit: 2, stderr: 'Error: backend changed' });
    await expect(new TerraformEngine({ dir: box.stackDir, env: box.env }).init()).rejects.toThrow(/terraform init -input=false -no-color failed with exit code 2 \(unexpected exit code\):\nError: backend changed/);
  });

  it('applies only a saved plan: without one the engine refuses and the error says why', async () => {
    const box = sandbox();
    const error = (await new TerraformEngine({ dir: box.stackDir, env: box.env }).apply().catch((e: unknown) => e)) as EngineError;
    expect(privatePlan(error.command)).toBe('terraform apply -input=false -no-color PRIVATE/tfplan');
    expect(privatePlan(error.stderrTail)).toBe('Error: Failed to load "PRIVATE/tfplan" as a plan file');
  });

  it('never shows a secret that the engine echoes, in errors or in the log', async () => {
    const box = sandbox();
    box.canned('init', { exit: 1 });
    const log: string[] = [];
    const engine = new TerraformEngine({ dir: box.stackDir, env: { ...box.env, FAKE_TERRAFORM_LEAK: '1' }, secretEnv: { TF_VAR_hcloud_token: CANARY }, log: (l) => log.push(l) });
    const error = (await engine.init().catch((e: unknown) => e)) as EngineError;
    expect(error.message).toContain('Error: 401 unauthorized for token [secret]');
    expect(log).toContain('Error: 401 unauthorized for token [secret]');
    expect(`${error.message}\n${log.join('\n')}\n${readFileSync(box.env.FAKE_TERRAFORM_RECORD!, 'utf8')}`).not.toContain(CANARY);
  });

  it('refuses to init a stack whose local state would be deleted with the plan directory', async () => {
    const box = sandbox();
    const stackWithState = (path: string) => writeFileSync(join(box.stackDir, 'main.tf.json'), JSON.stringify({ terraform: { backend: { local: { path } } } }));
    stackWithState('terraform.tfstate');
    await expect(new TerraformEngine({ dir: box.stackDir, env: box.env }).init()).rejects.toThrow(/local Terraform state terraform\.tfstate would live inside the plan directory .*, which every bin\/plan replaces/);
    expect(box.calls()).toEqual([]);
    stackWithState('../../terraform.tfstate');
    await new TerraformEngine({ dir: box.stackDir, env: box.env }).init();
    expect(box.calls().map((c) => c.argv)).toEqual(['init -input=false -no-color']);
  });

  it('says so when the outputs lack the host inventory', async () => {
    const box = sandbox();
    box.canned('output', { stdout: '{}' });
    await expect(new TerraformEngine({ dir: box.stackDir, env: box.env }).outputs()).rejects.toThrow(/terraform output -json has no "upkeep_hosts" output; was the stack applied\?/);
  });
});

describe('what the engine writes, which holds secrets (FAKE engine)', () => {
  const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);

  it('writes the saved plan 0600 into a private 0700 directory outside the plan directory, gone when the run ends', async () => {
    const box = sandbox();
    const modes = join(box.stackDir, '..', '..', 'modes.log');
    box.canned('plan', { exit: 2 });
    box.canned('show', { stdout: SHOW_JSON });
    const engine = new TerraformEngine({ dir: box.stackDir, env: { ...box.env, FAKE_TERRAFORM_MODES: modes }, secretEnv: { TF_VAR_hcloud_token: CANARY } });
    const stackBefore = readdirSync(box.stackDir);
    await inEngineWorkdir(engine, async () => {
      await engine.init();
      await engine.plan();
    });
    const [file, fileMode, dirMode] = readFileSync(modes, 'utf8').trim().split(' ');
    expect({ fileMode, dirMode }).toEqual({ fileMode: '600', dirMode: '700' });
    expect(file?.startsWith(join(box.stackDir, '..'))).toBe(false);
    expect(existsSync(file as string)).toBe(false);
    expect(readdirSync(box.stackDir)).toEqual(stackBefore);
  });

  it('keeps a local state file and its backup 0600, however they were left', async () => {
    const box = sandbox();
    writeFileSync(join(box.stackDir, 'main.tf.json'), JSON.stringify({ terraform: { backend: { local: { path: '../../terraform.tfstate' } } } }));
    const state = join(box.stackDir, '..', '..', 'terraform.tfstate');
    writeFileSync(`${state}.backup`, '{"older":"state"}\n');
    chmodSync(`${state}.backup`, 0o644);
    box.canned('plan', { exit: 2 });
    box.canned('show', { stdout: SHOW_JSON });
    const engine = new TerraformEngine({ dir: box.stackDir, env: { ...box.env, FAKE_TERRAFORM_STATE: state } });
    await inEngineWorkdir(engine, async () => {
      await engine.init();
      await engine.plan();
      await engine.apply();
    });
    expect({ state: mode(state), backup: mode(`${state}.backup`) }).toEqual({ state: '600', backup: '600' });
  });
});

describe('the engine secrets from the policy', () => {
  const provisioning = infraFleetSpec().provisioning!;

  it('passes the token as TF_VAR_hcloud_token and remembers it for redaction', () => {
    const secrets = new SecretValues();
    const env = engineSecretEnv(provisioning, { env: { UPKEEP_TEST_HCLOUD_TOKEN: `${CANARY}\n` }, baseDir: '.' }, secrets);
    expect(env).toEqual({ TF_VAR_hcloud_token: CANARY });
    expect(secrets.redact(`token ${CANARY}`)).toBe('token [secret]');
  });

  it('passes a pg connection string as PG_CONN_STR', () => {
    const pg = { ...provisioning, stateBackend: { pg: { connStr: { env: 'STATE_DB' } } } };
    const env = engineSecretEnv(pg, { env: { UPKEEP_TEST_HCLOUD_TOKEN: CANARY, STATE_DB: 'postgres://u:p@db/state' }, baseDir: '.' }, new SecretValues());
    expect(env.PG_CONN_STR).toBe('postgres://u:p@db/state');
  });

  it('names the missing variable, not a value', () => {
    expect(() => engineSecretEnv(provisioning, { env: {}, baseDir: '.' }, new SecretValues())).toThrow(SecretError);
    expect(() => engineSecretEnv(provisioning, { env: {}, baseDir: '.' }, new SecretValues())).toThrow(/environment variable UPKEEP_TEST_HCLOUD_TOKEN is not set/);
  });
});
