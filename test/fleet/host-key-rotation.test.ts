// A provisioned host's bootstrap ssh host key (made by Terraform, readable in user_data and state)
// is rotated by bin/apply on first contact, on real hosts: web1 plays a provisioned server whose
// key comes from Terraform outputs (the testbed's key standing in for the bootstrap key), stage1
// an existing host whose key is in the policy. The tests build on each other in order.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlanDocument } from '../../lib/plan/plan-format.ts';
import { writeFixturePlan } from '../fixtures/plan-dir.ts';
import { addressesOf, applyPlan, entries } from './apply-helpers.ts';
import { runCommand } from './run-command.ts';
import { FLEET_HOOK_TIMEOUT_MS, FLEET_TEST_TIMEOUT_MS, fleetAvailable, startFleet, type TestFleet } from './testbed.ts';

const HOSTS = ['stage1', 'web1'];

describe.skipIf(!fleetAvailable('the host key rotation tests (test/fleet/host-key-rotation.test.ts)'))('bin/apply rotates the bootstrap host key of a provisioned host', () => {
  let fleet: TestFleet;
  let work: string;
  let bootstrap: string;
  let outputs: string;
  let pinsFile: string;
  let current: PlanDocument | undefined;
  let planCount = 0;
  let rotated: string;

  async function plan(): Promise<string> {
    planCount += 1;
    const dir = join(work, `plan-${planCount}`);
    const addresses = addressesOf(fleet);
    // web1's key is not in the policy: it comes from the Terraform outputs, as for a provisioned server.
    const { hostKey: _fromTerraform, ...web1 } = addresses.web1!;
    current = await writeFixturePlan(dir, { hosts: { ...addresses, web1 }, ...(current && { base: current }) });
    return dir;
  }

  /** The ed25519 key the host's sshd presents right now, as `type base64`. */
  async function presented(name: string): Promise<string> {
    const scan = await runCommand('ssh-keyscan', ['-t', 'ed25519', fleet.host(name).address], { timeoutMs: 30_000 });
    const line = scan.stdout.split('\n').find((l) => l.includes('ssh-ed25519'));
    if (!line) throw new Error(`ssh-keyscan ${name}: no ed25519 key\n${scan.stderr}`);
    return line.split(' ').slice(1, 3).join(' ');
  }

  const pins = () => JSON.parse(readFileSync(pinsFile, 'utf8')) as { fleet: string; hosts: Record<string, { bootstrap: string; rotated: string }> };

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'upkeep-host-key-test-'));
    fleet = await startFleet(HOSTS);
    const web1 = fleet.host('web1');
    bootstrap = web1.hostKey;
    outputs = join(work, 'outputs.json');
    writeFileSync(outputs, JSON.stringify({ upkeep_hosts: { sensitive: false, value: { web1: { address: web1.address, host_key: bootstrap, port: 22 } } } }));
    pinsFile = join(work, 'upkeep-host-keys.json');
  }, FLEET_HOOK_TIMEOUT_MS);
  afterAll(async () => {
    await fleet?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  }, FLEET_HOOK_TIMEOUT_MS);

  it('rotates web1 on the first apply, pins the new key and applies the plan over it', async () => {
    expect(await presented('web1')).toBe(bootstrap);
    const run = await applyPlan(fleet, await plan(), ['--terraform-outputs', outputs, '--host-keys', pinsFile]);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(existsSync(pinsFile)).toBe(true);
    const recorded = pins();
    expect(Object.keys(recorded.hosts)).toEqual(['web1']);
    expect(recorded.hosts.web1!.bootstrap).toBe(bootstrap);
    rotated = recorded.hosts.web1!.rotated;
    expect(rotated).toMatch(/^ssh-ed25519 [A-Za-z0-9+/]+$/);
    expect(rotated).not.toBe(bootstrap);
    expect(run.stderr).toContain(`pinned host keys written to ${pinsFile}: commit it with the policy`);
    expect(entries(run, 'web1', 'host-key-rotate')[0]?.result).toBe('changed');
    expect(entries(run, 'web1', 'host-key-verify')[0]?.result).toBe('ok');
    expect(entries(run, 'web1', 'apply')[0]?.result).toBe('changed');
    expect(entries(run, 'stage1', 'host-key-rotate')).toEqual([]);
  }, FLEET_TEST_TIMEOUT_MS);

  it('leaves web1 presenting only the new key, and stage1 (key from the policy) its own', async () => {
    expect(await presented('web1')).toBe(rotated);
    expect(await presented('stage1')).toBe(fleet.host('stage1').hostKey);
    // Over a connection pinned with the rotated key only: no file in /etc/ssh holds the bootstrap key any more.
    const knownHosts = join(work, 'rotated_known_hosts');
    writeFileSync(knownHosts, `${fleet.host('web1').address} ${rotated}\n`);
    const options = fleet.sshOptions.map((o) => (o.startsWith('UserKnownHostsFile=') ? `UserKnownHostsFile=${knownHosts}` : o));
    const blob = bootstrap.split(' ')[1]!;
    const check = await runCommand('ssh', [...options, fleet.host('web1').address, `ssh-keygen -y -f /etc/ssh/ssh_host_ed25519_key; grep -rlF '${blob}' /etc/ssh || echo no-bootstrap-key`], { timeoutMs: 60_000 });
    expect(check.exitCode, check.stderr).toBe(0);
    expect(check.stdout).toMatch(new RegExp(`^${rotated.replace(/[+/]/g, '\\$&')}( .*)?\nno-bootstrap-key\n$`));
  }, FLEET_TEST_TIMEOUT_MS);

  it('refuses a connection pinned only with the bootstrap key', async () => {
    const result = await fleet.host('web1').ssh('true');
    expect(result.exitCode).toBe(255);
    expect(result.stderr).toMatch(/Host key verification failed/);
  }, FLEET_TEST_TIMEOUT_MS);

  it('connects with the rotated pin on the next apply and rotates nothing', async () => {
    const before = readFileSync(pinsFile, 'utf8');
    const run = await applyPlan(fleet, await plan(), ['--terraform-outputs', outputs, '--host-keys', pinsFile]);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(entries(run, 'web1', 'host-key-rotate')).toEqual([]);
    expect(entries(run, 'web1', 'apply')[0]?.result).toBe('unchanged');
    expect(readFileSync(pinsFile, 'utf8')).toBe(before);
    expect(await presented('web1')).toBe(rotated);
  }, FLEET_TEST_TIMEOUT_MS);

  it('fails closed without the pins file: the host is refused, not trusted and not rotated again', async () => {
    const missing = join(work, 'missing', 'upkeep-host-keys.json');
    await expect(applyPlan(fleet, await plan(), ['--terraform-outputs', outputs, '--host-keys', missing])).rejects.toThrow(
      new RegExp(`web1 presents neither its bootstrap host key from Terraform .* upkeep never trusts a key on first use: ${missing.replace(/[.]/g, '\\.')} is missing\\. If an earlier bin/apply rotated`),
    );
    expect(existsSync(missing)).toBe(false);
    expect(await presented('web1')).toBe(rotated);
  }, FLEET_TEST_TIMEOUT_MS);
});
