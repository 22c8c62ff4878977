// A redundant set on real hosts: two nameservers (role "dns", so the derived reboot set, probed on
// port 53 where each runs nsd) share one maintenance window and both have a kernel-like package
// pending a reboot. Started together, only the one whose slot it is reboots; the other, in its own
// slot, does not reboot while its peer does not answer (the reboot carries over), and does once the
// peer serves again (its readiness signed with its pinned host key: an impostor answering "ready"
// at its address is not believed). Each host reboots exactly once, and their downtimes never
// overlap: measured from the moment reboot.sh commits to the reboot (the mtime of
// reboot-last-opening) until nsd runs again, on the clock the containers share, and by sampling
// both hosts every second throughout.
// bin/plan and bin/apply run for real. The tests build on each other in order.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { applyPlan } from './apply-helpers.ts';
import { runCommand } from './run-command.ts';
import { FLEET_HOOK_TIMEOUT_MS, FLEET_TEST_TIMEOUT_MS, fleetAvailable, startFleet, type TestFleet, type TestHost } from './testbed.ts';
import { buildTinyDeb, installDeb } from './tiny-deb.ts';
import { bootId as bootIdOf, clock, comesBack as comesBackOf, EVERY_DAY, impostorReadiness, rebootJournal } from './reboot-helpers.ts';

const root = join(import.meta.dirname, '..', '..');
const NAMES = ['ns1', 'ns2'] as const;

describe.skipIf(!fleetAvailable('the reboot set tests (test/fleet/reboot-sets.test.ts)'))('two nameservers never reboot together', () => {
  let fleet: TestFleet;
  let work: string;
  let plans = 0;
  const host = (name: string): TestHost => fleet.host(name);
  /** [time, ns1 answered, ns2 answered] every second or so while the sampler runs. */
  const samples: [number, boolean, boolean][] = [];
  let sampling = false;
  let sampler: Promise<void> | undefined;

  function policy(start: string) {
    return {
      name: 'reboot-sets',
      defaults: { updates: { window: { every: 'week', days: EVERY_DAY, start, duration: '1h' }, reboot: 'when-needed' } },
      groups: { staging: { staging: true } },
      hosts: Object.fromEntries(
        NAMES.map((name) => [
          name,
          {
            group: 'staging',
            roles: ['dns'],
            address: host(name).address,
            hostKey: host(name).hostKey,
            exempt: { backups: 'A test host with nothing worth keeping.', monitoring: 'A test host; the test watches it.' },
          },
        ]),
      ),
    };
  }

  /** Plans and applies the window opening at `start` (UTC) on both hosts. */
  async function planAndApply(start: string): Promise<string> {
    plans += 1;
    writeFileSync(join(work, 'fleet.yaml'), stringify(policy(start)));
    const out = join(work, `plan-${plans}`);
    const base = plans > 1 ? ['--base', join(work, `plan-${plans - 1}`)] : [];
    const planned = await runCommand(join(root, 'bin', 'plan'), [join(work, 'fleet.yaml'), '--out', out, ...base], { env: { ...process.env, NO_COLOR: '1' } });
    expect(planned.exitCode, planned.stderr).toBe(2);
    const run = await applyPlan(fleet, out);
    expect(run.exitCode, run.stderr).toBe(0);
    return out;
  }

  const bootId = (name: string) => bootIdOf(host(name));
  const answers = async (name: string) => (await host(name).ssh('true', { timeoutMs: 5_000 }).catch(() => ({ exitCode: 1 }))).exitCode === 0;
  const journal = (name: string) => rebootJournal(host(name));
  const comesBack = (name: string, before: string, count: number) => comesBackOf(host(name), before, count, 'nsd');

  /**
   * [committed to the reboot, nsd active again] in epoch seconds, on the clock the containers share,
   * to the microsecond: a container reboots within a second on a quiet machine.
   */
  async function downtime(name: string): Promise<[number, number]> {
    const r = await host(name).ssh('stat -c %.6Y /var/lib/upkeep/reboot-last-opening; date -d "$(systemctl show --timestamp=us+utc -p ActiveEnterTimestamp --value nsd)" +%s.%6N');
    expect(r.exitCode, r.stderr).toBe(0);
    const [from, to] = r.stdout.trim().split('\n').map(Number);
    expect(to).toBeGreaterThan(from);
    return [from, to];
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'upkeep-reboot-sets-test-'));
    fleet = await startFleet([...NAMES]);
    const kernel = await buildTinyDeb({
      name: 'upkeep-test-kernel',
      version: '1.0',
      files: { '/usr/share/doc/upkeep-test-kernel/README': 'a kernel-like test package\n' },
      scripts: { postinst: 'touch /var/run/reboot-required\necho upkeep-test-kernel >> /var/run/reboot-required.pkgs' },
    });
    for (const name of NAMES) {
      // No package archive: routine updates find nothing, quickly. nsd serves port 53, from boot on.
      // nsd on the host's address only (the stock configuration also wants IPv6 and remote control).
      const conf = `server:\n  ip-address: ${host(name).address}\n  do-ip6: no\nremote-control:\n  control-enable: no\n`;
      expect((await host(name).ssh('cat > /etc/nsd/nsd.conf', { input: conf })).exitCode).toBe(0);
      const prepared = await host(name).ssh('rm -f /etc/apt/sources.list /etc/apt/sources.list.d/* && systemctl enable nsd.service && systemctl restart nsd.service', { timeoutMs: 120_000 });
      expect(prepared.exitCode, prepared.stderr).toBe(0);
      await installDeb(host(name), kernel);
    }
    // Each sees the other serving, as reboot.sh will look.
    const probe = await host('ns2').ssh(`timeout 10 bash -c 'exec 3<>/dev/tcp/${host('ns1').address}/53' && echo answers`);
    expect(probe.stdout.trim()).toBe('answers');
  }, FLEET_HOOK_TIMEOUT_MS);
  afterAll(async () => {
    sampling = false;
    await sampler;
    await fleet?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  }, FLEET_HOOK_TIMEOUT_MS);

  let boot1: string;
  let boot2: string;
  let down1: [number, number];

  it('GIVEN both in the window with a reboot pending, WHEN both look at once, THEN only ns1 (slot 1) reboots, and ns2 waits for its slot', async () => {
    // Slots of a 1h window for two hosts: ns1 0-30 min (begins by 15), ns2 30-60 (begins by 45).
    await planAndApply(clock(-2));
    boot1 = await bootId('ns1');
    boot2 = await bootId('ns2');
    sampling = true;
    sampler = (async () => {
      while (sampling) {
        const [a, b] = await Promise.all(NAMES.map(answers));
        samples.push([Date.now(), a, b]);
        await sleep(1_000);
      }
    })();
    // What the timers start at the opening: each routine run starts upkeep-reboot, on both hosts at once.
    const runs = await Promise.all(NAMES.map((name) => host(name).ssh('systemctl start upkeep-routine-updates.service', { timeoutMs: 300_000 })));
    for (const r of runs) expect(r.exitCode === 0 || r.exitCode === 255, r.stderr).toBe(true);
    boot1 = await comesBack('ns1', boot1, 1);
    down1 = await downtime('ns1');
    expect(await journal('ns2')).toContain("outside this host's slot in reboot set dns");
    expect(host('ns2').reboots).toBe(0);
    expect(await bootId('ns2')).toBe(boot2);
    expect((await host('ns2').ssh('test -e /var/run/reboot-required && echo pending')).stdout.trim()).toBe('pending');
  }, FLEET_TEST_TIMEOUT_MS);

  it('GIVEN ns2 in its slot, WHEN its peer ns1 does not answer on port 53, THEN ns2 does not reboot and the reboot stays pending', async () => {
    await planAndApply(clock(-32));
    expect((await host('ns1').ssh('systemctl stop nsd')).exitCode).toBe(0);
    const run = await host('ns2').ssh('systemctl start upkeep-reboot.service');
    expect(run.exitCode, run.stderr).toBe(0);
    expect(await journal('ns2')).toContain(`peer ns1 of reboot set dns does not answer on ${host('ns1').address} port 53; the reboot carries over`);
    await sleep(5_000);
    expect(host('ns2').reboots).toBe(0);
    expect(await bootId('ns2')).toBe(boot2);
    expect((await host('ns2').ssh('test -e /var/run/reboot-required && echo pending; test -e /var/lib/upkeep/reboot-last-opening || echo none')).stdout.trim().split('\n')).toEqual(['pending', 'none']);
  }, FLEET_TEST_TIMEOUT_MS);

  it('GIVEN ns2 in its slot, WHEN an impostor answers "ready" on ns1\'s readiness port, THEN ns2 does not reboot: the answer is not signed with ns1\'s pinned key', async () => {
    const ns1 = host('ns1');
    // ns1 serves on port 53; a plain HTTP server answers at its readiness port (9470, the first member's).
    expect((await ns1.ssh('systemctl start nsd')).exitCode).toBe(0);
    const restore = await impostorReadiness(ns1, 9470);
    try {
      const run = await host('ns2').ssh('systemctl start upkeep-reboot.service');
      expect(run.exitCode, run.stderr).toBe(0);
      expect(await journal('ns2')).toContain(`peer ns1 of reboot set dns says it is ready, but not signed with its pinned host key over this run's nonce (an impostor at ${ns1.address}, or a peer on an older generation); the reboot carries over`);
      await sleep(5_000);
      expect(host('ns2').reboots).toBe(0);
      expect(await bootId('ns2')).toBe(boot2);
    } finally {
      await restore();
    }
  }, FLEET_TEST_TIMEOUT_MS);

  it('WHEN ns1 serves again, THEN ns2 reboots once, ns1 having signed its readiness; each host rebooted once, and their downtimes never overlapped', async () => {
    expect((await host('ns1').ssh('systemctl start nsd')).exitCode).toBe(0);
    const run = await host('ns2').ssh('systemctl start upkeep-reboot.service');
    expect([0, 255]).toContain(run.exitCode);
    boot2 = await comesBack('ns2', boot2, 1);
    // ns1, outside its slot now, does not go again.
    const again = await host('ns1').ssh('systemctl start upkeep-reboot.service');
    expect(again.exitCode, again.stderr).toBe(0);
    await sleep(5_000);
    sampling = false;
    await sampler;
    expect([host('ns1').reboots, host('ns2').reboots]).toEqual([1, 1]);

    // ns2 committed to its reboot only after ns1 was back with nsd serving: the downtimes are disjoint.
    const [from2, to2] = await downtime('ns2');
    expect(from2).toBeGreaterThan(down1[1]);
    // Sampled: never both unreachable at once.
    const both = samples.filter(([, a, b]) => !a && !b).map(([t]) => new Date(t).toISOString());
    expect(both).toEqual([]);
    // The sampler ran throughout (a sample takes one ssh round trip per host, a few seconds here).
    expect(samples.length).toBeGreaterThan(10);
    const gaps = samples.slice(1).map(([t], i) => t - samples[i][0]);
    expect(Math.max(...gaps)).toBeLessThan(15_000);
    console.log(`reboot sets: ${samples.length} samples, at most ${Math.max(...gaps)} ms apart; ns1 unreachable in ${samples.filter(([, a]) => !a).length}, ns2 in ${samples.filter(([, , b]) => !b).length}; ns1 down ${(down1[1] - down1[0]).toFixed(1)} s (${down1[0]}-${down1[1]}), ns2 down ${(to2 - from2).toFixed(1)} s (${from2}-${to2}), until nsd active`);
  }, FLEET_TEST_TIMEOUT_MS);
});
