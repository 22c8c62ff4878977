// A test fleet playing Hetzner servers: the test hosts' addresses and bootstrap keys reach bin/plan
// and bin/apply as Terraform outputs from a FAKE Hetzner engine (test/contract/fake-hetzner.ts), so
// bin/apply takes the real provisioning path (engine steps, inventory from the outputs, bootstrap
// keys rotated and pinned in the pins file); nothing in the policy names their addresses or keys.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fakeHetzner } from '../contract/fake-hetzner.ts';
import { applyPlan, pinPresentedKeys, type ApplyRun } from './apply-helpers.ts';
import { startFleet, type TestFleet } from './testbed.ts';

export interface ProvisionedTestFleet {
  readonly fleet: TestFleet;
  /** A directory of the test's own, removed by stop(). */
  readonly work: string;
  /** The operator key a policy's provisioning section names: the one the test's ssh uses. */
  readonly operatorKey: string;
  /** bin/apply of `planDir` with the host key pins, after which the test's own ssh pins the keys the hosts present. */
  apply(planDir: string): Promise<ApplyRun>;
  /** The key bin/apply rotated `host` to and pinned. */
  rotatedKey(host: string): string;
  /** Stops the hosts, restores the environment and removes the work directory. */
  stop(): Promise<void>;
}

/** Boots `names` as provisioned servers, with `env` (the policy's secrets) set for bin/plan and bin/apply. */
export async function startProvisionedFleet(names: readonly string[], env: Record<string, string>): Promise<ProvisionedTestFleet> {
  const saved = { ...process.env };
  const work = mkdtempSync(join(tmpdir(), 'upkeep-provisioned-test-'));
  const fleet = await startFleet([...names]);
  const fake = fakeHetzner(join(work, 'hetzner'), fleet.hosts);
  Object.assign(process.env, fake.env, { HCLOUD_TOKEN: 'fake-hcloud-token-for-a-provisioned-test-fleet', NO_COLOR: '1' }, env);
  const pinsFile = join(work, 'upkeep-host-keys.json');
  return {
    fleet,
    work,
    operatorKey: readFileSync(`${fleet.identityFile}.pub`, 'utf8').trim(),
    async apply(planDir) {
      const run = await applyPlan(fleet, planDir, ['--host-keys', pinsFile]);
      await pinPresentedKeys(fleet);
      return run;
    },
    rotatedKey: (host) => (JSON.parse(readFileSync(pinsFile, 'utf8')) as { hosts: Record<string, { rotated: string }> }).hosts[host]!.rotated,
    async stop() {
      process.env = saved;
      await fleet.stop();
      rmSync(work, { recursive: true, force: true });
    },
  };
}
