// A reboot set of provisioned servers: ns1 and ns2 are test hosts playing Hetzner servers, whose
// addresses and bootstrap keys reach bin/apply as Terraform outputs from a FAKE Hetzner engine
// (test/contract/fake-hetzner.ts). The policy knows neither their addresses nor their keys, so
// bin/apply rotates the bootstrap keys and pins each member's address and rotated key on the other
// (lib/apply/peer-pins.ts). Then ns2, in its slot with a reboot pending, asks ns1 at the
// pinned address and believes only ns1's answer signed with the pinned key: not before the pin,
// not an impostor's at ns1's address; and reboots once ns1 itself answers.
//
// The tests build on each other in order.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runPlan } from '../../lib/cli/plan.ts';
import { entries } from './apply-helpers.ts';
import { bootId, clock, comesBack, EVERY_DAY, impostorReadiness, rebootJournal } from './reboot-helpers.ts';
import { FLEET_HOOK_TIMEOUT_MS, FLEET_TEST_TIMEOUT_MS, fleetAvailable, type TestFleet } from './testbed.ts';
import { startProvisionedFleet, type ProvisionedTestFleet } from './provisioned-fleet.ts';

const NAMES = ['ns1', 'ns2'] as const;
const PIN_DIR = '/var/lib/upkeep/peers';
const EXEMPT = 'A throwaway test container: only its reboots are under test here.';

describe.skipIf(!fleetAvailable('the provisioned reboot set test (test/fleet/reboot-set-provisioned.test.ts)'))('a reboot set of provisioned servers asks each member at the address, and believes only the key, that bin/apply pinned', () => {
  let provisioned: ProvisionedTestFleet;
  let fleet: TestFleet;
  let planDir: string;
  let boot2: string;
  const rotatedKey = (host: string) => provisioned.rotatedKey(host);
  const apply = () => provisioned.apply(planDir);

  /** Both in the window that opened 32 minutes ago: ns2's slot (the second half of the hour). */
  function policy(operatorKey: string) {
    return {
      name: 'provisioned-reboots',
      provisioning: { token: { env: 'HCLOUD_TOKEN' }, adminNetworks: ['203.0.113.0/24'], operatorKeys: [operatorKey] },
      defaults: { updates: { window: { every: 'week', days: EVERY_DAY, start: clock(-32), duration: '1h' }, reboot: 'when-needed' } },
      groups: { staging: { staging: true } },
      // Probed on their ssh port (no port named): sshd runs on every test host.
      rebootSets: { pair: { hosts: [...NAMES] } },
      hosts: Object.fromEntries(NAMES.map((name) => [name, { group: 'staging', provision: { serverType: 'cx22' }, exempt: { backups: EXEMPT, monitoring: EXEMPT } }])),
    };
  }

  /** ns2's reboot, as its timer starts it, when it does not reboot: what it said in this boot. */
  async function rebootNs2(): Promise<string> {
    const run = await fleet.host('ns2').ssh('systemctl start upkeep-reboot.service', { timeoutMs: 120_000 });
    expect(run.exitCode, run.stderr).toBe(0);
    return rebootJournal(fleet.host('ns2'));
  }

  /** ns2 stays up, on the boot it had, `reboots` reboots in all. */
  async function expectNoReboot(reboots = 0): Promise<void> {
    await sleep(5_000);
    expect(fleet.host('ns2').reboots).toBe(reboots);
    expect(await bootId(fleet.host('ns2'))).toBe(boot2);
  }

  beforeAll(async () => {
    provisioned = await startProvisionedFleet([...NAMES], {});
    fleet = provisioned.fleet;
    writeFileSync(join(provisioned.work, 'fleet.yaml'), stringify(policy(provisioned.operatorKey)));
    planDir = join(provisioned.work, 'plan');
    expect(await runPlan([join(provisioned.work, 'fleet.yaml'), '--out', planDir])).toBe(2);
    for (const name of NAMES) {
      // No package archive: routine updates find nothing, quickly.
      const prepared = await fleet.host(name).ssh('rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*');
      expect(prepared.exitCode, prepared.stderr).toBe(0);
    }
  }, FLEET_HOOK_TIMEOUT_MS);
  afterAll(() => provisioned?.stop(), FLEET_HOOK_TIMEOUT_MS);

  it("plans neither address nor key for the peers, and bin/apply pins each member's address and rotated key on the other", async () => {
    const plan = readFileSync(join(planDir, 'plan.json'), 'utf8');
    for (const name of NAMES) expect(plan).not.toContain(fleet.host(name).address);

    const run = await apply();
    expect(run.exitCode, run.stderr).toBe(0);
    for (const [member, peer] of [['ns1', 'ns2'], ['ns2', 'ns1']] as const) {
      expect(entries(run, peer, 'host-key-rotate')[0]?.result).toBe('changed');
      expect(entries(run, member, 'peer-pin')[0]).toMatchObject({ result: 'changed', detail: `${peer} pinned` });
      // The key bin/apply itself verified after the rotation, not the bootstrap key from Terraform.
      expect(rotatedKey(peer)).not.toBe(fleet.host(peer).hostKey);
      const pinned = await fleet.host(member).ssh(`cat ${PIN_DIR}/addresses ${PIN_DIR}/signers | grep -v '^#'`);
      expect(pinned.stdout).toBe(`${peer} ${fleet.host(peer).address}\n${peer} namespaces="upkeep-reboot-ready" ${rotatedKey(peer)}\n`);
    }
  }, FLEET_TEST_TIMEOUT_MS);

  it('costs no round trip on the next apply while the pins are in place', async () => {
    const run = await apply();
    expect(run.exitCode, run.stderr).toBe(0);
    for (const name of NAMES) expect(entries(run, name, 'peer-pin')[0]?.result).toBe('unchanged');
  }, FLEET_TEST_TIMEOUT_MS);

  it('GIVEN ns2 in its slot with a reboot pending, WHEN nothing is pinned on it, THEN it asks no one and does not reboot; the next apply pins ns1 again', async () => {
    const ns2 = fleet.host('ns2');
    boot2 = await bootId(ns2);
    // Its timers stopped: ns2 reboots when this test starts upkeep-reboot, not when a timer does.
    // The pins gone, a kernel-like update's flag, and the window's routine run (which also starts
    // the reboot, without waiting for it).
    const routine = await ns2.ssh(`systemctl stop upkeep-reboot.timer upkeep-routine-updates.timer && rm -r ${PIN_DIR} && touch /var/run/reboot-required && systemctl start upkeep-routine-updates.service`, { timeoutMs: 300_000 });
    expect(routine.exitCode, routine.stderr).toBe(0);
    expect(await rebootNs2()).toContain(`peer ns1 of reboot set pair is provisioned, and bin/apply has not pinned its address and host key on this host (${PIN_DIR}); the reboot carries over`);
    await expectNoReboot();

    const run = await apply();
    expect(run.exitCode, run.stderr).toBe(0);
    expect(entries(run, 'ns2', 'peer-pin')[0]?.result).toBe('changed');
    expect(entries(run, 'ns1', 'peer-pin')[0]?.result).toBe('unchanged');
  }, FLEET_TEST_TIMEOUT_MS);

  it("GIVEN ns2 in its slot, WHEN an impostor answers \"ready\" at ns1's pinned address and readiness port, THEN ns2 does not reboot", async () => {
    const ns1 = fleet.host('ns1');
    // Where ns1's readiness socket was: 9470, the first member's.
    const restore = await impostorReadiness(ns1, 9470);
    try {
      expect(await rebootNs2()).toContain(`peer ns1 of reboot set pair says it is ready, but not signed with its pinned host key over this run's nonce (an impostor at ${ns1.address}, or a peer on an older generation); the reboot carries over`);
      await expectNoReboot();
    } finally {
      await restore();
    }
  }, FLEET_TEST_TIMEOUT_MS);

  it('WHEN ns1 answers itself, signing with its rotated host key, THEN ns2 reboots, once', async () => {
    // What ns1 serves: its readiness, signed (the signature block after the reason).
    const served = await fleet.host('ns2').ssh(`curl -sS "http://${fleet.host('ns1').address}:9470/?nonce=$(printf '%032d' 7)"`);
    expect(served.stdout).toMatch(/^ready.*\n-----BEGIN SSH SIGNATURE-----\n[\s\S]*-----END SSH SIGNATURE-----\n$/);
    const run = await fleet.host('ns2').ssh('systemctl start upkeep-reboot.service', { timeoutMs: 120_000 });
    expect([0, 255]).toContain(run.exitCode);
    boot2 = await comesBack(fleet.host('ns2'), boot2, 1, 'ssh');
    // Once per window opening: it does not go again.
    expect(await rebootNs2()).toContain('reboot: already rebooted in the window that opened');
    await expectNoReboot(1);
    expect([fleet.host('ns1').reboots, fleet.host('ns2').reboots]).toEqual([0, 1]);
  }, FLEET_TEST_TIMEOUT_MS);
});
