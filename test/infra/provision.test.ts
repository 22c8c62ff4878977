// bin/apply and bin/plan with a FAKE Terraform engine (test/fixtures/fake-terraform): no tofu or
// terraform can download providers here, so the fake records its command lines (with fingerprints
// of the secrets in its environment) and answers with canned output. Everything else is real: the
// plan directory comes from bin/plan, bin/apply runs as a process with the system ssh client, and
// the "hosts" are TCP listeners on 127.0.0.x that look at the applier's known_hosts file while ssh
// is connected to them, then hang up, which stops the run right after the inventory step.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildInventory, knownHostsLines } from '../../lib/hosts/inventory.ts';
import { Journal, type JournalDocument } from '../../lib/apply/journal.ts';
import { provision } from '../../lib/apply/provision.ts';
import { SecretValues } from '../../lib/plan/secrets.ts';
import { localStatePath } from '../../lib/engine/local-state.ts';
import { INSTALL_HINT } from '../../lib/engine/terraform.ts';
import type { PlanDocument } from '../../lib/plan/plan-format.ts';
import { TOKEN_ENV } from '../fixtures/infra-fleet.ts';
import { programsAvailable } from '../programs.ts';

const root = join(import.meta.dirname, '..', '..');
const FAKE_ENGINE = join(root, 'test', 'fixtures', 'fake-terraform');
const CANARY = 'canary-hcloud-token-94c2e7b1d0';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
/** The saved plan lives in a private temporary directory, its name random: PRIVATE/tfplan in expectations. */
const SAVED_PLAN_PATH = /\/\S*\/upkeep-engine-[^/\s"]+\/tfplan/g;
const privatePlan = (text: string) => text.replace(SAVED_PLAN_PATH, 'PRIVATE/tfplan');
const work = mkdtempSync(join(tmpdir(), 'upkeep-provision-test-'));
// Thousands of small plan files, and each project's tsx compile cache: removing them takes seconds.
afterAll(() => rmSync(work, { recursive: true, force: true }), 60_000);

// The infra fixture fleet without its one existing host: every host is provisioned.
const POLICY = `import { infraFleetSpec } from ${JSON.stringify(join(root, 'test', 'fixtures', 'infra-fleet.ts'))};
const spec = structuredClone(infraFleetSpec());
delete spec.hosts.legacy1;
export default spec;
`;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a bin/ command without blocking this process (the fake hosts answer from it); `started` gets its pid. */
function run(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv, started?: (pid: number) => void): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(join(root, 'bin', command), args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid !== undefined) started?.(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

interface Project {
  readonly dir: string;
  readonly planDir: string;
  readonly tmp: string;
  readonly record: string;
  /** PATH holds the FAKE engine under `engineName`, node, and /usr/bin:/bin (no real engine); the token is the canary. */
  readonly env: NodeJS.ProcessEnv;
  canned(sub: string, parts: { stdout?: string; exit?: number }): void;
  calls(): { name: string; cwd: string; tokenSha: string; automation: string; argv: string }[];
}

let counter = 0;

/** A project directory with the policy, a bin directory with the FAKE engine, and canned answers. */
function project(engineName: string | undefined): Project {
  const dir = join(work, `project-${++counter}`);
  const bin = join(dir, '.bin');
  const canned = join(dir, '.canned');
  const tmp = join(dir, '.tmp');
  for (const d of [bin, canned, tmp]) mkdirSync(d, { recursive: true });
  if (engineName) symlinkSync(FAKE_ENGINE, join(bin, engineName));
  // node by itself, not its directory, which may hold a real engine (/usr/local/bin often does).
  symlinkSync(process.execPath, join(bin, 'node'));
  writeFileSync(join(dir, 'upkeep.ts'), POLICY);
  const record = join(dir, '.calls.log');
  writeFileSync(record, '');
  return {
    dir,
    planDir: join(dir, 'out', 'plan'),
    tmp,
    record,
    env: {
      PATH: `${bin}:/usr/bin:/bin`,
      HOME: process.env.HOME,
      TMPDIR: tmp,
      NO_COLOR: '1',
      RESTIC_PASSWORD: 'restic-password-for-tests',
      [TOKEN_ENV]: CANARY,
      FAKE_TERRAFORM_RECORD: record,
      FAKE_TERRAFORM_CANNED: canned,
    },
    canned(sub, parts) {
      if (parts.stdout !== undefined) writeFileSync(join(canned, `${sub}.stdout`), parts.stdout);
      if (parts.exit !== undefined) writeFileSync(join(canned, `${sub}.exit`), String(parts.exit));
    },
    calls() {
      return readFileSync(record, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [name, cwd, tokenSha, , automation, ...argv] = line.split('|');
          return { name, cwd, tokenSha, automation, argv: privatePlan(argv.join('|')) };
        });
    },
  };
}

const showJson = (changes: { address: string; actions: string[] }[]) =>
  JSON.stringify({
    format_version: '1.2',
    resource_changes: changes.map(({ address, actions }) => ({ address, mode: 'managed', type: address.split('.')[0], change: { actions } })),
  });

/** A host the applier will try to reach: records the applier's known_hosts while ssh is connected, then hangs up. */
interface FakeHost {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly hostKey: string;
  readonly seenKnownHosts: string[];
  readonly server: Server;
}

async function fakeHost(name: string, index: number, hostKey: string, tmp: string): Promise<FakeHost> {
  const seenKnownHosts: string[] = [];
  const server = createServer((socket) => {
    for (const entry of readdirSync(tmp).filter((e) => e.startsWith('upkeep-known-hosts-'))) {
      const file = join(tmp, entry, 'known_hosts');
      if (existsSync(file)) seenKnownHosts.push(readFileSync(file, 'utf8'));
    }
    socket.destroy();
  });
  const address = `127.0.0.${10 + index}`;
  await new Promise<void>((resolvePromise) => server.listen(0, address, resolvePromise));
  const port = (server.address() as { port: number }).port;
  return { name, address, port, hostKey, seenKnownHosts, server };
}

/** An ed25519 public key line, made up but well formed (each host its own). */
const hostKeyOf = (name: string) => `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${createHash('sha256').update(name).digest('base64').slice(0, 43)}`;

function outputJson(hosts: readonly FakeHost[]): string {
  return JSON.stringify({
    upkeep_hosts: { sensitive: false, type: ['object', {}], value: Object.fromEntries(hosts.map((h) => [h.name, { address: h.address, host_key: h.hostKey, port: h.port }])) },
  });
}

/** One offline plan directory (bin/plan without the token), copied into the projects that only apply. */
let offlinePlan: string;
beforeAll(async () => {
  const p = project(undefined);
  const planned = await run('plan', ['--out', 'out/plan'], p.dir, { ...p.env, [TOKEN_ENV]: '' });
  expect(planned.code, planned.stderr).toBe(2);
  offlinePlan = p.planDir;
}, 60_000);

/** The project with the offline plan at out/plan (same depth, so the relative state path holds). */
function withOfflinePlan(p: Project): Project {
  cpSync(offlinePlan, p.planDir, { recursive: true });
  return p;
}

const planFor = (p: Project) => JSON.parse(readFileSync(join(p.planDir, 'plan.json'), 'utf8')) as PlanDocument;
const journalOf = (p: Project) => JSON.parse(readFileSync(join(p.planDir, 'apply-journal.json'), 'utf8')) as JournalDocument;
const fleetSteps = (journal: JournalDocument) => journal.entries.filter((e) => e.host === '(fleet)' && e.step.startsWith('terraform-')).map((e) => `${e.step} ${e.result}`);

describe('bin/apply on a plan with a terraform/ stack (FAKE engine)', () => {
  let p: Project;
  let hosts: FakeHost[] = [];
  let applied: Run;
  let stackFilesBefore: string[];
  let state: string;

  beforeAll(async () => {
    p = withOfflinePlan(project('tofu'));
    stackFilesBefore = readdirSync(join(p.planDir, 'terraform')).sort();
    hosts = await Promise.all(Object.keys(planFor(p).hosts).map((name, i) => fakeHost(name, i, hostKeyOf(name), p.tmp)));
    p.canned('plan', { exit: 2 });
    p.canned('show', { stdout: showJson([{ address: 'hcloud_server.web1', actions: ['create'] }]) });
    p.canned('output', { stdout: outputJson(hosts) });
    // The fixture keeps its state outside the project's directory, in a state/ directory not made yet.
    state = localStatePath(join(p.planDir, 'terraform')) as string;
    expect(state).toBe(join(p.dir, 'state', 'acme.tfstate'));
    rmSync(dirname(state), { recursive: true, force: true });
    applied = await run('apply', ['out/plan', '--confirm-timeout', '5'], p.dir, { ...p.env, FAKE_TERRAFORM_STATE: state });
  }, 120_000);
  afterAll(() => hosts.forEach((h) => h.server.close()));

  it('runs init, a saved plan, its apply and output, in that order, in the stack directory', () => {
    expect(p.calls().map((c) => c.argv)).toEqual([
      'init -input=false -no-color',
      'plan -input=false -no-color -out=PRIVATE/tfplan -detailed-exitcode',
      'show -json -no-color PRIVATE/tfplan',
      'apply -input=false -no-color PRIVATE/tfplan',
      'output -json -no-color',
    ]);
    for (const call of p.calls()) expect(call).toMatchObject({ name: 'tofu', cwd: join(p.planDir, 'terraform'), automation: '1' });
  });

  it('hands the engine the token in TF_VAR_hcloud_token, and never in its argv, the output or the journal', () => {
    for (const call of p.calls()) expect(call.tokenSha).toBe(sha256(CANARY));
    const everything = [readFileSync(p.record, 'utf8'), applied.stdout, applied.stderr, readFileSync(join(p.planDir, 'apply-journal.json'), 'utf8')].join('\n');
    expect(privatePlan(everything)).toContain('$ tofu apply -input=false -no-color PRIVATE/tfplan');
    expect(everything).not.toContain(CANARY);
  });

  it.skipIf(!programsAvailable('test/infra/provision.test.ts (the ssh connection to the provisioned hosts)', ['ssh']))('connects with a known_hosts that pins exactly the host keys from the engine outputs', () => {
    const contacted = hosts.filter((h) => h.seenKnownHosts.length > 0);
    expect(contacted.length).toBeGreaterThan(0);
    const expected = hosts.map((h) => `[${h.address}]:${h.port} ${h.hostKey}\n`).sort().join('');
    for (const host of contacted) for (const seen of host.seenKnownHosts) expect(seen).toBe(expected);
  });

  it('journals the engine steps, then stops with exit 1 when the hosts hang up', () => {
    expect(applied.code, applied.stderr).toBe(1);
    const journal = journalOf(p);
    expect(fleetSteps(journal)).toEqual(['terraform-engine ok', 'terraform-init ok', 'terraform-plan ok', 'terraform-review ok', 'terraform-apply changed', 'terraform-output ok']);
    expect(journal.entries.find((e) => e.step === 'terraform-plan')?.detail).toBe('1 to add, 0 to change, 0 to replace, 0 to destroy');
    expect(journal.entries.some((e) => e.result === 'failed' && !e.step.startsWith('terraform-'))).toBe(true);
    expect(journal).toMatchObject({ outcome: 'failed', exit_code: 1 });
    const progress = privatePlan(applied.stderr).split('\n');
    expect(progress[0]).toMatch(/^provisioning with tofu \(/);
    expect(progress.indexOf('infrastructure: 1 to add, 0 to change, 0 to replace, 0 to destroy')).toBeLessThan(progress.indexOf('$ tofu apply -input=false -no-color PRIVATE/tfplan'));
  });

  it('leaves the local state, which holds the bootstrap host keys, readable by its owner only, in a private directory', () => {
    expect(statSync(state).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(state)).mode & 0o777).toBe(0o700);
  });

  it('closes a state and backup left readable by an earlier run before the engine reads them', async () => {
    const q = withOfflinePlan(project('tofu'));
    const earlier = localStatePath(join(q.planDir, 'terraform')) as string;
    mkdirSync(dirname(earlier));
    for (const file of [earlier, `${earlier}.backup`]) {
      writeFileSync(file, '{}\n');
      chmodSync(file, 0o644);
    }
    q.canned('init', { exit: 1 });
    const again = await run('apply', ['out/plan'], q.dir, q.env);
    expect(again.code).toBe(1);
    for (const file of [earlier, `${earlier}.backup`]) expect(statSync(file).mode & 0o777).toBe(0o600);
  }, 60_000);

  it('rotates hosts on their bootstrap key first: the rotation connections pin the output keys, nothing is recorded when the hosts hang up', () => {
    expect(applied.stderr).toContain(`rotating the bootstrap host key of ${hosts.map((h) => h.name).join(', ')}`);
    expect(applied.stderr).toMatch(/host keys of provisioned hosts are not all in place; the rollout did not start/);
    expect(existsSync(join(p.dir, 'upkeep-host-keys.json'))).toBe(false);
    // Hosts are rotated in parallel: the journal has them in the order they ended.
    expect(journalOf(p).entries.filter((e) => e.step === 'host-key-rotate').map((e) => `${e.host} ${e.result}`).sort()).toEqual(hosts.map((h) => `${h.name} failed`).sort());
  });

  it('leaves the stack directory as bin/plan wrote it: the saved plan, which holds the token, is gone', () => {
    expect(readdirSync(join(p.planDir, 'terraform')).sort()).toEqual(stackFilesBefore);
  });
});

describe('bin/apply applies only the reviewed infrastructure (FAKE engine)', () => {
  it('refuses a main.tf.json that gained a local-exec provisioner after review, before the engine runs', async () => {
    const p = withOfflinePlan(project('tofu'));
    const main = join(p.planDir, 'terraform', 'main.tf.json');
    const stack = JSON.parse(readFileSync(main, 'utf8'));
    stack.resource.terraform_data = { pwn: { provisioner: [{ 'local-exec': { command: 'printf %s "$TF_VAR_hcloud_token" > /tmp/stolen' } }] } };
    writeFileSync(main, JSON.stringify(stack, null, 2));
    const applied = await run('apply', ['out/plan'], p.dir, p.env);
    expect(applied.code).toBe(1);
    expect(applied.stderr).toMatch(/^bin\/apply: .*terraform\/main\.tf\.json differs from the reviewed plan/m);
    expect(p.calls()).toEqual([]);
  }, 60_000);

  it('with --plan-id refuses any other plan before anything runs, and takes the short id bin/plan prints', async () => {
    const p = withOfflinePlan(project('tofu'));
    const id = planFor(p).plan_id;
    const other = `${id.startsWith('0') ? '1' : '0'}${id.slice(1)}`;
    const refused = await run('apply', ['out/plan', '--plan-id', other], p.dir, p.env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`holds plan ${id.slice(0, 12)}, not the approved plan ${other}: refusing to apply it`);
    expect(p.calls()).toEqual([]);
    expect(existsSync(join(p.planDir, 'apply-journal.json'))).toBe(false);
    p.canned('init', { exit: 1 });
    const accepted = await run('apply', ['out/plan', '--plan-id', id.slice(0, 12)], p.dir, p.env);
    expect(accepted.stderr).not.toContain('not the approved plan');
    expect(p.calls().map((c) => c.argv)).toEqual(['init -input=false -no-color']);
  }, 60_000);

  it('refuses a destroy or replace the reviewed plan did not show: the engine apply is not run', async () => {
    const p = withOfflinePlan(project('tofu'));
    expect(planFor(p).infrastructure?.diff).toMatchObject({ replace: [], destroy: [] });
    p.canned('plan', { exit: 2 });
    p.canned('show', { stdout: showJson([{ address: 'hcloud_server.web1', actions: ['delete'] }, { address: 'hcloud_volume.backup1', actions: ['delete', 'create'] }, { address: 'hcloud_server.web2', actions: ['create'] }]) });
    const applied = await run('apply', ['out/plan'], p.dir, p.env);
    expect(applied.code).toBe(1);
    expect(applied.stderr).toContain("refusing to apply the infrastructure: the engine's plan would destroy hcloud_server.web1, replace hcloud_volume.backup1, which the reviewed plan did not show");
    expect(p.calls().map((c) => c.argv.split(' ')[0])).toEqual(['init', 'plan', 'show']);
    expect(fleetSteps(journalOf(p))).toEqual(['terraform-engine ok', 'terraform-init ok', 'terraform-plan ok', 'terraform-review failed']);
    expect(readdirSync(join(p.planDir, 'terraform'))).toEqual(readdirSync(join(offlinePlan, 'terraform')));
  }, 60_000);

  it('applies a destroy that the reviewed plan (the engine\'s own at plan time) showed', async () => {
    const p = project('tofu');
    p.canned('plan', { exit: 2 });
    p.canned('show', { stdout: showJson([{ address: 'hcloud_server.web1', actions: ['delete'] }]) });
    expect((await run('plan', ['--out', 'out/plan'], p.dir, p.env)).code).toBe(2);
    const plan = planFor(p);
    expect(plan.infrastructure).toMatchObject({ diff: { destroy: ['hcloud_server.web1'] }, source: '`tofu show -json` of a saved plan' });
    expect(readFileSync(join(p.planDir, 'plan.md'), 'utf8')).toContain(`plan \`${plan.plan_id.slice(0, 12)}\``);
    const applied = await run('apply', ['out/plan', '--plan-id', plan.plan_id], p.dir, p.env);
    expect(applied.stderr).not.toContain('refusing');
    expect(p.calls().map((c) => c.argv.split(' ')[0])).toEqual(['init', 'plan', 'show', 'init', 'plan', 'show', 'apply', 'output']);
  }, 60_000);
});

describe('bin/apply stopped by SIGTERM while the engine applies (FAKE engine)', () => {
  it('passes the signal on, removes the saved plan, which holds the token, and exits 143', async () => {
    const p = withOfflinePlan(project('tofu'));
    const modes = join(p.dir, '.modes.log');
    const stackBefore = readdirSync(join(p.planDir, 'terraform')).sort();
    p.canned('plan', { exit: 2 });
    p.canned('show', { stdout: showJson([{ address: 'hcloud_server.web1', actions: ['create'] }]) });
    writeFileSync(join(p.env.FAKE_TERRAFORM_CANNED as string, 'apply.sleep'), '60');
    let pid = 0;
    const applying = run('apply', ['out/plan'], p.dir, { ...p.env, FAKE_TERRAFORM_MODES: modes }, (n) => (pid = n));
    for (let i = 0; i < 300 && !p.calls().some((c) => c.argv.startsWith('apply ')); i++) await sleep(100);
    expect(p.calls().map((c) => c.argv.split(' ')[0])).toEqual(['init', 'plan', 'show', 'apply']);
    const [savedPlan, fileMode, dirMode] = readFileSync(modes, 'utf8').trim().split(' ');
    expect({ fileMode, dirMode }).toEqual({ fileMode: '600', dirMode: '700' });
    expect(existsSync(savedPlan as string)).toBe(true); // while the engine runs
    process.kill(pid, 'SIGTERM');
    const stopped = await applying;
    expect(stopped.code, stopped.stderr).toBe(143);
    expect(existsSync(savedPlan as string)).toBe(false);
    expect(readdirSync(p.tmp).filter((e) => e.startsWith('upkeep-engine-'))).toEqual([]);
    expect(readdirSync(join(p.planDir, 'terraform')).sort()).toEqual(stackBefore);
  }, 60_000);
});

describe('bin/apply on provisioned hosts whose keys were rotated before (FAKE engine)', () => {
  let p: Project;
  let hosts: FakeHost[] = [];
  let applied: Run;
  const rotatedKeyOf = (name: string) => hostKeyOf(`${name} rotated on the host`);

  beforeAll(async () => {
    p = withOfflinePlan(project('tofu'));
    hosts = await Promise.all(Object.keys(planFor(p).hosts).map((name, i) => fakeHost(name, i, hostKeyOf(name), p.tmp)));
    // The pins file beside the policy records a rotation for every host whose output key is still the bootstrap key.
    writeFileSync(
      join(p.dir, 'upkeep-host-keys.json'),
      JSON.stringify({ format_version: 1, fleet: planFor(p).fleet, hosts: Object.fromEntries(hosts.map((h) => [h.name, { bootstrap: h.hostKey, rotated: rotatedKeyOf(h.name) }])) }),
    );
    p.canned('plan', { exit: 0 });
    p.canned('show', { stdout: showJson([]) });
    p.canned('output', { stdout: outputJson(hosts) });
    applied = await run('apply', ['out/plan', '--confirm-timeout', '5'], p.dir, p.env);
  }, 120_000);
  afterAll(() => hosts.forEach((h) => h.server.close()));

  it.skipIf(!programsAvailable('test/infra/provision.test.ts (the ssh connection to the provisioned hosts)', ['ssh']))('pins the rotated keys, never the bootstrap keys from the outputs, and rotates nothing', () => {
    expect(applied.code, applied.stderr).toBe(1);
    expect(applied.stderr).not.toContain('rotating the bootstrap host key');
    const contacted = hosts.filter((h) => h.seenKnownHosts.length > 0);
    expect(contacted.length).toBeGreaterThan(0);
    const expected = hosts.map((h) => `[${h.address}]:${h.port} ${rotatedKeyOf(h.name)}\n`).sort().join('');
    for (const host of contacted) for (const seen of host.seenKnownHosts) expect(seen).toBe(expected);
    expect(journalOf(p).entries.filter((e) => e.step.startsWith('host-key-'))).toEqual([]);
  });
});

describe('bin/apply without an engine or without provisioning', () => {
  it('stops before anything runs and says how to install tofu or terraform', async () => {
    const p = withOfflinePlan(project(undefined));
    const applied = await run('apply', ['out/plan'], p.dir, p.env);
    expect(applied.code).toBe(1);
    expect(applied.stderr).toContain(`bin/apply: no Terraform engine found (neither tofu nor terraform is on PATH): ${INSTALL_HINT}`);
    expect(fleetSteps(journalOf(p))).toEqual(['terraform-engine failed']);
    expect(journalOf(p)).toMatchObject({ outcome: 'failed', exit_code: 1 });
  }, 60_000);

  it('with --no-provision does not call the engine, and provisioned hosts then have no address', async () => {
    const p = withOfflinePlan(project('terraform'));
    const applied = await run('apply', ['out/plan', '--no-provision'], p.dir, p.env);
    expect(applied.code).toBe(1);
    expect(p.calls()).toEqual([]);
    expect(applied.stderr).toMatch(/web1: no usable address \(none in plan\.json or Terraform outputs\)/);
  }, 60_000);
});

describe('provision() when the engine sees nothing to change (FAKE engine)', () => {
  it('skips the apply, journals why, and returns the outputs whose keys the known_hosts pins', async () => {
    const p = withOfflinePlan(project('terraform'));
    const plan = planFor(p);
    const fake = Object.keys(plan.hosts).map((name, i) => ({ name, address: `127.0.0.${10 + i}`, port: 22, hostKey: hostKeyOf(name) }));
    p.canned('plan', { exit: 0 });
    p.canned('show', { stdout: showJson([]) });
    p.canned('output', { stdout: outputJson(fake as FakeHost[]) });
    const log: string[] = [];
    const cwd = process.cwd();
    process.chdir(p.dir); // the policy's secret base directory is relative to where bin/apply runs
    const journal = new Journal({ file: join(p.dir, 'journal.json'), planId: plan.plan_id, fleet: plan.fleet });
    const outputs = await provision(p.planDir, plan, { log: (l) => log.push(l), secrets: new SecretValues(), env: p.env, journal }).finally(() => process.chdir(cwd));
    expect(p.calls().map((c) => c.argv.split(' ')[0])).toEqual(['init', 'plan', 'show', 'output']);
    expect(log).toContain('no infrastructure changes: apply skipped');
    expect(fleetSteps(journal.document())).toEqual(['terraform-engine ok', 'terraform-init ok', 'terraform-plan ok', 'terraform-review ok', 'terraform-apply skipped', 'terraform-output ok']);
    expect(knownHostsLines(buildInventory(plan, { terraformOutputs: outputs }))).toBe(fake.map((h) => `${h.address} ${h.hostKey}\n`).sort().join(''));
  }, 60_000);
});

/** The hosting example's one expected warning (its only monitor has no heartbeat), taken off before stderr is compared. */
const withoutMonitorWarning = (stderr: string) => stderr.replace(/^bin\/plan: warning: .*: the fleet's only monitor has no heartbeat .*\n/m, '');

describe('bin/plan with an engine and credentials (FAKE engine)', () => {
  it('takes the infrastructure section from show -json of a saved plan, destroy warning included', async () => {
    const p = project('tofu');
    p.canned('plan', { exit: 2 });
    p.canned('show', { stdout: showJson([{ address: 'hcloud_server.web1', actions: ['delete'] }]) });
    const planned = await run('plan', ['--out', 'out/plan'], p.dir, p.env);
    expect(planned.code).toBe(2);
    expect(withoutMonitorWarning(planned.stderr)).toBe('');
    expect(p.calls().map((c) => c.argv)).toEqual(['init -input=false -no-color', 'plan -input=false -no-color -out=PRIVATE/tfplan -detailed-exitcode', 'show -json -no-color PRIVATE/tfplan']);
    for (const call of p.calls()) expect(call.tokenSha).toBe(sha256(CANARY));
    const markdown = readFileSync(join(p.planDir, 'plan.md'), 'utf8');
    expect(markdown).toContain('Source: `tofu show -json` of a saved plan.');
    expect(markdown).toMatch(/\*\*WARNING: 1 server\(s\), volume\(s\) or address\(es\) will be DESTROYED or REPLACED\.\*\* .*`hcloud_server\.web1` \(destroy\)/);
    expect(markdown).toContain('**0 to add, 0 to change, 0 to replace, 1 to destroy**');
    expect(planned.stdout).toContain('Infrastructure: 0 to add, 0 to change, 0 to replace, 1 to destroy');
    expect(readdirSync(join(p.planDir, 'terraform'))).not.toContain('tfplan');
    const written = [markdown, readFileSync(join(p.planDir, 'plan.json'), 'utf8'), planned.stdout, planned.stderr].join('\n');
    expect(written).not.toContain(CANARY);
  }, 60_000);

  it('keeps the offline section and warns on stderr when the engine fails; the exit code stays the plan\'s', async () => {
    const p = project('terraform');
    p.canned('init', { exit: 1 });
    const planned = await run('plan', ['--out', 'out/plan'], p.dir, p.env);
    expect(planned.code).toBe(2);
    expect(withoutMonitorWarning(planned.stderr)).toMatch(/^bin\/plan: warning: the Terraform engine could not plan the infrastructure, plan\.md shows the offline diff instead: terraform init -input=false -no-color failed with exit code 1/);
    const markdown = readFileSync(join(p.planDir, 'plan.md'), 'utf8');
    expect(markdown).toContain('Source: offline diff against an empty base (no --base given).');
    expect(markdown).toMatch(/\*\*\d+ to add, 0 to change, 0 to replace, 0 to destroy\*\*/);
  }, 60_000);

  it('without the token plans offline and silently, against --base when given', async () => {
    const p = project('tofu');
    const again = await run('plan', ['--out', 'out/plan', '--base', offlinePlan], p.dir, { ...p.env, [TOKEN_ENV]: '' });
    expect(withoutMonitorWarning(again.stderr)).toBe('');
    expect(p.calls()).toEqual([]);
    expect(readFileSync(join(p.planDir, 'plan.md'), 'utf8')).toContain('Source: offline diff against --base.\n\n**0 to add, 0 to change, 0 to replace, 0 to destroy**');
  }, 60_000);
});

// A real engine where one is installed: here it cannot reach its provider registry, so it fails
// like any engine can, and bin/plan must still leave a clean plan directory (real `init` leaves
// .terraform/ behind, which a later --base would trip over).
const realEngine = (process.env.PATH ?? '')
  .split(':')
  .filter((dir) => dir.startsWith('/') && !dir.startsWith(root))
  .flatMap((dir) => ['tofu', 'terraform'].map((name) => join(dir, name)))
  .find((path) => existsSync(path));

describe.skipIf(realEngine === undefined)('bin/plan with the real engine installed on this machine', () => {
  it('warns when the engine cannot plan, keeps the offline section and leaves only the synthesized stack', async () => {
    const p = project(undefined);
    const planned = await run('plan', ['--out', 'out/plan'], p.dir, { ...p.env, UPKEEP_TERRAFORM: realEngine });
    expect(planned.code).toBe(2);
    expect(withoutMonitorWarning(planned.stderr)).toMatch(/^bin\/plan: warning: the Terraform engine could not plan the infrastructure, plan\.md shows the offline diff instead: (tofu|terraform) /);
    expect(planned.stderr).not.toContain(CANARY);
    expect(readFileSync(join(p.planDir, 'plan.md'), 'utf8')).toContain('Source: offline diff against an empty base (no --base given).');
    expect(readdirSync(join(p.planDir, 'terraform'))).toEqual(readdirSync(join(offlinePlan, 'terraform')));
  }, 120_000);
});
