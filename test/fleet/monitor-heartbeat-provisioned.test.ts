// Watching a provisioned monitor: mon1 and web1 are test hosts playing Hetzner servers, whose
// addresses and bootstrap keys reach bin/apply as Terraform outputs from a FAKE Hetzner engine
// (test/contract/fake-hetzner.ts). The policy has no address for mon1, so web1's monitor-heartbeat
// check reads mon1's liveness time at the address bin/apply pins on web1 (lib/apply/peer-pins.ts),
// written before the wave whose health gate runs that check. Without the pin the check cannot look
// and says why; a stopped monitor is still noticed.
//
// The tests build on each other in order.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runPlan } from '../../lib/cli/plan.ts';
import { fakeHetzner } from '../contract/fake-hetzner.ts';
import { applyPlan, entries, pinPresentedKeys, type ApplyRun } from './apply-helpers.ts';
import { FLEET_HOOK_TIMEOUT_MS, FLEET_TEST_TIMEOUT_MS, fleetAvailable, startFleet, type TestFleet } from './testbed.ts';

const INTERVAL = 10;
const MAX_AGE = 30;
const EXEMPT = 'A throwaway test container: only its monitoring is under test here.';

describe.skipIf(!fleetAvailable('the provisioned monitor heartbeat test (test/fleet/monitor-heartbeat-provisioned.test.ts)'))('a provisioned monitor is watched at the address bin/apply pinned', () => {
  let fleet: TestFleet;
  let work: string;
  let pinsFile: string;
  let plans = 0;
  let server: Server;
  /** The test's receiver: mon1's dead-man's switch pings it, and alerts go to its /hook. */
  let base = '';
  const savedEnv = { ...process.env };

  /** The policy; web1 watches mon1's heartbeat when `watch`. */
  function policy(operatorKey: string, watch: boolean) {
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
          monitoring: { interval: `${INTERVAL}s`, routes, checks: { disk: { kind: 'disk-usage' }, ...(watch && { monitor: { kind: 'monitor-heartbeat', monitor: 'mon1', maxAge: `${MAX_AGE}s` } }) } },
        },
      },
    };
  }

  async function planAndApply(watch: boolean): Promise<ApplyRun> {
    plans += 1;
    writeFileSync(join(work, 'fleet.yaml'), stringify(policy(readFileSync(`${fleet.identityFile}.pub`, 'utf8').trim(), watch)));
    const out = join(work, `plan-${plans}`);
    const base = plans > 1 ? ['--base', join(work, `plan-${plans - 1}`)] : [];
    expect(await runPlan([join(work, 'fleet.yaml'), '--out', out, ...base])).toBe(2);
    return apply(out);
  }

  async function apply(planDir = join(work, `plan-${plans}`)): Promise<ApplyRun> {
    const run = await applyPlan(fleet, planDir, ['--host-keys', pinsFile]);
    await pinPresentedKeys(fleet);
    return run;
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
    work = mkdtempSync(join(tmpdir(), 'upkeep-heartbeat-provisioned-test-'));
    fleet = await startFleet(['mon1', 'web1']);
    const fake = fakeHetzner(join(work, 'hetzner'), fleet.hosts);
    Object.assign(process.env, fake.env, { HCLOUD_TOKEN: 'fake-hcloud-token-for-the-heartbeat-test', HEARTBEAT_URL: `${base}/ping/key`, NO_COLOR: '1' });
    pinsFile = join(work, 'upkeep-host-keys.json');
  }, FLEET_HOOK_TIMEOUT_MS);
  afterAll(async () => {
    process.env = savedEnv;
    await fleet?.stop();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    if (work) rmSync(work, { recursive: true, force: true });
  }, FLEET_HOOK_TIMEOUT_MS);

  it('GIVEN a provisioned monitor with its heartbeat, WHEN web1 starts watching it, THEN the check, in web1\'s health gate already, reads it at the pinned address', async () => {
    const first = await planAndApply(false);
    expect(first.exitCode, first.stderr).toBe(0);
    // mon1 serves its first liveness time once its checks ran and its heartbeat timer fired.
    const mon1 = fleet.host('mon1');
    const serving = await mon1.ssh(`for i in $(seq 120); do curl -fs http://${mon1.address}:9469/ && exit 0; sleep 1; done; exit 1`, { timeoutMs: 180_000 });
    expect(serving.exitCode, serving.stderr).toBe(0);

    const run = await planAndApply(true);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(entries(run, 'web1', 'peer-pin')[0]).toMatchObject({ result: 'changed', detail: 'mon1 pinned' });
    // The gate ran the new check (an UNKNOWN, with no address to ask, would have failed it and
    // rolled web1 back), and found nothing to report.
    expect(entries(run, 'web1', 'health-gate')[0]).toMatchObject({ result: 'ok' });
    expect(entries(run, 'web1', 'health-gate')[0]?.detail).toBeUndefined();
    // The plan named no address for mon1; the check env has the port only.
    expect(readFileSync(join(work, 'plan-2', 'plan.json'), 'utf8')).not.toContain(mon1.address);
    expect((await fleet.host('web1').ssh('cat /var/lib/upkeep/peers/addresses')).stdout).toContain(`\nmon1 ${mon1.address}\n`);
    expect(await checkNow()).toMatch(/^OK: monitor mon1's checks all ran \d+s ago$/);
  }, FLEET_TEST_TIMEOUT_MS);

  it('says it cannot look, naming the pin, when nothing is pinned; the next apply pins mon1 again', async () => {
    expect((await fleet.host('web1').ssh('rm -r /var/lib/upkeep/peers')).exitCode).toBe(0);
    expect(await checkNow()).toBe('UNKNOWN: monitor mon1 is provisioned, and bin/apply has not pinned its address on this host (/var/lib/upkeep/peers/addresses)');
    const run = await apply();
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
