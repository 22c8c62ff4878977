// Watching a provisioned monitor: mon1 and web1 are test hosts playing Hetzner servers, whose
// addresses and bootstrap keys reach bin/apply as Terraform outputs from a FAKE Hetzner engine
// (test/contract/fake-hetzner.ts). The policy has no address for mon1, so web1's monitor-heartbeat
// check reads mon1's liveness time at the address bin/apply pins on web1 (lib/apply/peer-pins.ts),
// written before the wave whose health gate runs that check. Both are new: the fleet's first
// rollout passes web1's gate while mon1 has recorded no heartbeat yet, since mon1 has maxAge from
// when its heartbeat was set up. Without the pin the check cannot look and says why; a stopped
// monitor is noticed.
//
// The tests build on each other in order.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runPlan } from '../../lib/cli/plan.ts';
import { entries, type ApplyRun } from './apply-helpers.ts';
import { FLEET_HOOK_TIMEOUT_MS, FLEET_TEST_TIMEOUT_MS, fleetAvailable, type TestFleet } from './testbed.ts';
import { startProvisionedFleet, type ProvisionedTestFleet } from './provisioned-fleet.ts';

const INTERVAL = 10;
const MAX_AGE = 30;
const EXEMPT = 'A throwaway test container: only its monitoring is under test here.';

describe.skipIf(!fleetAvailable('the provisioned monitor heartbeat test (test/fleet/monitor-heartbeat-provisioned.test.ts)'))('a provisioned monitor is watched at the address bin/apply pinned', () => {
  let provisioned: ProvisionedTestFleet;
  let fleet: TestFleet;
  let planDir: string;
  let server: Server;
  /** The test's receiver: mon1's dead-man's switch pings it, and alerts go to its /hook. */
  let base = '';

  /** The policy: web1 watches mon1's heartbeat. */
  function policy(operatorKey: string) {
    const exempt = { updates: EXEMPT, backups: EXEMPT };
    const routes = [{ name: 'pager', webhook: `${base}/hook` }];
    return {
      name: 'provisioned-heartbeat',
      provisioning: { token: { env: 'HCLOUD_TOKEN' }, adminNetworks: ['203.0.113.0/24'], operatorKeys: [operatorKey] },
      groups: { staging: { staging: true }, production: { after: ['staging'] } },
      hosts: {
        mon1: {
          group: 'staging',
          roles: ['monitor'],
          provision: { serverType: 'cx22' },
          exempt,
          monitoring: { interval: `${INTERVAL}s`, routes, heartbeat: { url: { env: 'HEARTBEAT_URL' } }, checks: { disk: { kind: 'disk-usage' } } },
        },
        web1: {
          group: 'production',
          provision: { serverType: 'cx22' },
          exempt,
          monitoring: { interval: `${INTERVAL}s`, routes, checks: { disk: { kind: 'disk-usage' }, monitor: { kind: 'monitor-heartbeat', monitor: 'mon1', maxAge: `${MAX_AGE}s` } } },
        },
      },
    };
  }

  async function planAndApply(): Promise<ApplyRun> {
    writeFileSync(join(provisioned.work, 'fleet.yaml'), stringify(policy(provisioned.operatorKey)));
    expect(await runPlan([join(provisioned.work, 'fleet.yaml'), '--out', planDir])).toBe(2);
    return provisioned.apply(planDir);
  }

  /** Runs web1's heartbeat check now; what it said. */
  async function checkNow(): Promise<string> {
    const web1 = fleet.host('web1');
    const run = await web1.ssh('systemctl start upkeep-check-web1-monitor.service && cat /var/lib/upkeep/checks/web1-monitor.message');
    expect(run.exitCode, run.stderr).toBe(0);
    return run.stdout.trim();
  }

  beforeAll(async () => {
    // The dead-man's switch mon1 pings: a receiver in this test.
    server = createServer((_request, response) => response.writeHead(200).end('ok\n'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    provisioned = await startProvisionedFleet(['mon1', 'web1'], { HEARTBEAT_URL: `${base}/ping/key` });
    fleet = provisioned.fleet;
    planDir = join(provisioned.work, 'plan');
  }, FLEET_HOOK_TIMEOUT_MS);
  afterAll(async () => {
    await provisioned?.stop();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }, FLEET_HOOK_TIMEOUT_MS);

  it("GIVEN a new provisioned monitor and a host watching it, WHEN the fleet's first rollout runs, THEN the watcher's check, in its health gate already, reads the monitor at the pinned address", async () => {
    const run = await planAndApply();
    expect(run.exitCode, run.stderr).toBe(0);
    expect(entries(run, 'web1', 'peer-pin')[0]).toMatchObject({ result: 'changed', detail: 'mon1 pinned' });
    // The gate ran the new check and found nothing to report: with no address to ask, or with
    // mon1's missing first heartbeat counted against it, the check would have failed it.
    expect(entries(run, 'web1', 'health-gate')[0]).toMatchObject({ result: 'ok' });
    expect(entries(run, 'web1', 'health-gate')[0]?.detail).toBeUndefined();
    const mon1 = fleet.host('mon1');
    // The plan named no address for mon1: web1 has the one Terraform gave it.
    expect(readFileSync(join(planDir, 'plan.json'), 'utf8')).not.toContain(mon1.address);
    expect((await fleet.host('web1').ssh('cat /var/lib/upkeep/peers/addresses')).stdout).toContain(`\nmon1 ${mon1.address}\n`);
    expect(await checkNow()).toMatch(/^OK: monitor mon1 (has recorded no heartbeat yet: set up \d+s ago|'s checks all ran \d+s ago)/);
    // mon1 records its first time at its heartbeat's next run (its timer's, a minute in; started
    // here), its checks having run in its health gate.
    // /var/lib/upkeep as the agent makes it where it is the first to (0700 root): the liveness
    // server, an unprivileged DynamicUser, must not need it.
    const beat = await mon1.ssh(`chmod 0700 /var/lib/upkeep && systemctl start upkeep-heartbeat.service && curl -fsS http://${mon1.address}:9469/`);
    const why = beat.exitCode === 0 ? '' : (await mon1.ssh('journalctl --no-pager -n 40 -u upkeep-heartbeat.service -u upkeep-check-mon1-disk.service; ls -l --time-style=+%s /var/lib/upkeep/checks /var/lib/upkeep-liveness; date +%s')).stdout;
    expect(beat.exitCode, `${beat.stderr}\n${why}`).toBe(0);
    expect(beat.stdout.trim()).toMatch(/^\d{10}$/);
    // Served from a directory of its own, readable by the unprivileged server.
    expect((await mon1.ssh('stat -c "%a %U" /var/lib/upkeep-liveness /var/lib/upkeep-liveness/last')).stdout).toBe('755 root\n644 root\n');
    expect(await checkNow()).toMatch(/^OK: monitor mon1's checks all ran \d+s ago$/);
  }, FLEET_TEST_TIMEOUT_MS);

  it('says it cannot look, naming the pin, when nothing is pinned; the next apply pins mon1 again', async () => {
    expect((await fleet.host('web1').ssh('rm -r /var/lib/upkeep/peers')).exitCode).toBe(0);
    expect(await checkNow()).toBe('UNKNOWN: monitor mon1 is provisioned, and bin/apply has not pinned its address on this host (/var/lib/upkeep/peers/addresses)');
    const run = await provisioned.apply(planDir);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(entries(run, 'web1', 'peer-pin')[0]?.result).toBe('changed');
    expect(await checkNow()).toMatch(/^OK: /);
  }, FLEET_TEST_TIMEOUT_MS);

  it('WHEN the monitor stops, THEN web1 sees it silent at the pinned address', async () => {
    const stop = await fleet.host('mon1').ssh("systemctl stop 'upkeep-*.timer'");
    expect(stop.exitCode, stop.stderr).toBe(0);
    await sleep((MAX_AGE + 2 * INTERVAL) * 1000);
    expect(await checkNow()).toMatch(/^CRITICAL: monitor mon1 silent: its checks last all ran \d+s ago \(more than 30s\)$/);
  }, FLEET_TEST_TIMEOUT_MS);
});
