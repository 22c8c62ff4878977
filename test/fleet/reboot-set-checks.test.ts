// A member of a reboot set comes back and passes its checks before the next member reboots, on real
// hosts: two nameservers (role "dns": the derived set, probed on port 53 where each runs nsd), both
// with a reboot pending, each with a dns check of its own nsd and a reboot-required check, alerts
// to a webhook served here.
//
// - ns1 comes back from a reboot while ns2 is in its slot (an unplanned reboot here, the case where
//   the half-slot margin of lib/policy/reboot-slot.ts does not help; a slow reboot looks the same): ns2, asked every few seconds, does not reboot while ns1 serves on port 53 but
//   its check has not passed since the boot, and reboots after it has. Measured on the hosts'
//   clocks: ns1 serving again -> ns1's check passed -> ns2 committed to its reboot.
// - ns1 comes back from a reboot with its dns check failing (its zone lost the record at the
//   restart) while nsd still answers on port 53: ns2 in its slot does not reboot;
//   once ns1 stays not ready past its bound, its reboot-required check goes CRITICAL and the alert
//   says the set holds its reboots. Fixed, the check passes and ns2 reboots, after that pass.
//
// bin/plan and bin/apply run for real. The tests build on each other in order. Each scenario
// needs an opening of its own (a host reboots once per opening), so the windows are written in
// zones 26 hours apart: their openings fall on different dates at any time of day.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { applyPlan } from './apply-helpers.ts';
import { bootId, clock, comesBack, EVERY_DAY } from './reboot-helpers.ts';
import { runCommand } from './run-command.ts';
import { FLEET_HOOK_TIMEOUT_MS, fleetAvailable, startFleet, type TestFleet, type TestHost } from './testbed.ts';
import { buildTinyDeb, installDeb } from './tiny-deb.ts';

const root = join(import.meta.dirname, '..', '..');
const NAMES = ['ns1', 'ns2'] as const;
/** UTC-12 and UTC+14: local dates 26 hours apart, so the two scenarios' openings never share a date. */
const FIRST_ZONE = 'Etc/GMT+12';
const SECOND_ZONE = 'Pacific/Kiritimati';
/** ns1's readiness bound: two runs of its 1-minute check and two minutes more (lib/compile/reboot-set.ts). */
const READY_WITHIN = 240;
/** Reboots, a bound of four minutes and a shared machine: longer than the testbed's default. */
const TEST_TIMEOUT_MS = 900_000;

const zone = (withWww: boolean) =>
  ['$ORIGIN example.test.', '$TTL 60', '@ IN SOA ns1.example.test. admin.example.test. 1 3600 600 86400 60', '@ IN NS ns1.example.test.', ...(withWww ? ['www IN A 192.0.2.80'] : []), ''].join('\n');

interface Hit {
  readonly at: number;
  readonly body: string;
}

describe.skipIf(!fleetAvailable('the reboot set readiness tests (test/fleet/reboot-set-checks.test.ts)'))('a reboot set member passes its checks before the next one reboots', () => {
  let fleet: TestFleet;
  let work: string;
  let plans = 0;
  let hook: Server;
  let hookUrl: string;
  const hits: Hit[] = [];
  const host = (name: string): TestHost => fleet.host(name);

  function policy(start: string, timeZone: string) {
    return {
      name: 'reboot-set-checks',
      defaults: {
        updates: { window: { every: 'week', days: EVERY_DAY, start, duration: '1h', timeZone }, reboot: 'when-needed' },
        monitoring: { interval: '1m', failureThreshold: 1, recoveryThreshold: 1, routes: [{ name: 'ops', webhook: hookUrl, delivery: '1m' }] },
      },
      groups: { staging: { staging: true } },
      hosts: Object.fromEntries(
        NAMES.map((name) => [
          name,
          {
            group: 'staging',
            roles: ['dns'],
            address: host(name).address,
            hostKey: host(name).hostKey,
            exempt: { backups: 'A test host with nothing worth keeping.' },
            monitoring: { checks: { dns: { kind: 'dns', server: host(name).address, name: 'www.example.test', type: 'A' }, reboot: { kind: 'reboot-required' } } },
          },
        ]),
      ),
    };
  }

  async function planAndApply(start: string, timeZone: string): Promise<void> {
    plans += 1;
    writeFileSync(join(work, 'fleet.yaml'), stringify(policy(start, timeZone)));
    const out = join(work, `plan-${plans}`);
    const base = plans > 1 ? ['--base', join(work, `plan-${plans - 1}`)] : [];
    const planned = await runCommand(join(root, 'bin', 'plan'), [join(work, 'fleet.yaml'), '--out', out, ...base], { env: { ...process.env, NO_COLOR: '1' } });
    expect(planned.exitCode, planned.stderr).toBe(2);
    const run = await applyPlan(fleet, out);
    expect(run.exitCode, run.stderr).toBe(0);
  }

  /** Epoch seconds of the first run of ns1's check `check` in this boot that said `severity`, from ns1's journal; undefined before one did. */
  async function firstRun(check: string, severity: string): Promise<number | undefined> {
    const r = await host('ns1').ssh(`journalctl -b -u upkeep-check-ns1-${check}.service -o short-unix --no-pager | grep -m 1 ' ns1-${check}: ${severity}: '`);
    return r.exitCode === 0 ? Math.floor(Number(r.stdout.split(' ')[0])) : undefined;
  }

  /** Waits (polling ns1's journal, not sleeping a fixed time) for the first run of `check` in this boot that said `severity`. */
  async function awaitRun(check: string, severity: string): Promise<number> {
    const deadline = Date.now() + 240_000;
    for (;;) {
      const at = await firstRun(check, severity);
      if (at !== undefined) return at;
      expect(Date.now(), `ns1-${check} said no ${severity} in time`).toBeLessThan(deadline);
      await sleep(3_000);
    }
  }

  /** When ns2 committed to its reboot (the mtime of reboot-last-opening), on its clock. */
  async function committed(): Promise<number> {
    const r = await host('ns2').ssh('stat -c %Y /var/lib/upkeep/reboot-last-opening');
    expect(r.exitCode, r.stderr).toBe(0);
    return Number(r.stdout.trim());
  }

  /** Runs ns2's reboot.service and returns what it said (the last lines of this run), or undefined when the host went down for its reboot. */
  async function ns2Looks(): Promise<string | undefined> {
    const r = await host('ns2')
      .ssh(`since=$(date '+%Y-%m-%d %H:%M:%S'); systemctl start upkeep-reboot.service && journalctl -u upkeep-reboot.service --since "$since" -o cat --no-pager | grep '^reboot: ' | tail -n 1`, { timeoutMs: 60_000 })
      .catch(() => undefined);
    return r && r.exitCode === 0 ? r.stdout.trim() : undefined;
  }

  /**
   * ns2's part of the opening: its routine run (which a member must have had in this window before
   * it reboots), run as its timer runs it but without the reboot attempt the unit starts after
   * it; and its reboot timer stopped, since the test asks reboot.service itself every few seconds.
   */
  async function ns2InItsWindow(): Promise<void> {
    const routine = await host('ns2').ssh('systemctl stop upkeep-reboot.timer && DEBIAN_FRONTEND=noninteractive /usr/local/lib/upkeep/updates.sh routine && cat /var/lib/upkeep/routine-last-opening', { timeoutMs: 300_000 });
    expect(routine.exitCode, routine.stderr).toBe(0);
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'upkeep-reboot-set-checks-test-'));
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        hits.push({ at: Date.now() / 1000, body });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
    fleet = await startFleet([...NAMES]);
    const kernel = await buildTinyDeb({
      name: 'upkeep-test-kernel',
      version: '1.0',
      files: { '/usr/share/doc/upkeep-test-kernel/README': 'a kernel-like test package\n' },
      scripts: { postinst: 'touch /var/run/reboot-required\necho upkeep-test-kernel >> /var/run/reboot-required.pkgs' },
    });
    for (const name of NAMES) {
      // nsd on the host's address only, serving example.test, from boot on. No package archive:
      // routine updates find nothing, quickly.
      const conf = `server:\n  ip-address: ${host(name).address}\n  do-ip6: no\nremote-control:\n  control-enable: no\nzone:\n  name: example.test\n  zonefile: /etc/nsd/example.test.zone\n`;
      expect((await host(name).ssh('cat > /etc/nsd/nsd.conf', { input: conf })).exitCode).toBe(0);
      expect((await host(name).ssh('cat > /etc/nsd/example.test.zone', { input: zone(true) })).exitCode).toBe(0);
      const prepared = await host(name).ssh('rm -f /etc/apt/sources.list /etc/apt/sources.list.d/* && systemctl enable nsd.service && systemctl restart nsd.service', { timeoutMs: 120_000 });
      expect(prepared.exitCode, prepared.stderr).toBe(0);
      const answer = await host(name).ssh(`dig +short @${host(name).address} www.example.test A`);
      expect(answer.stdout.trim()).toBe('192.0.2.80');
      await installDeb(host(name), kernel);
    }
  }, FLEET_HOOK_TIMEOUT_MS);
  afterAll(async () => {
    await fleet?.stop();
    await new Promise((resolve) => hook?.close(resolve));
    if (work) rmSync(work, { recursive: true, force: true });
  }, FLEET_HOOK_TIMEOUT_MS);

  it('GIVEN ns2 in its slot, both with a reboot pending, WHEN ns1 comes back from a reboot, THEN ns2 reboots only after every check of ns1 passed since that boot, not when nsd answers', async () => {
    // Slots of a 1h window for two hosts: ns1 0-30 min (begins by 15), ns2 30-60 (begins by 45).
    await planAndApply(clock(-32, FIRST_ZONE), FIRST_ZONE);
    await ns2InItsWindow();
    const ns2Boot = await bootId(host('ns2'));
    const before = await bootId(host('ns1'));
    await host('ns1').ssh('systemctl reboot').catch(() => undefined);
    await comesBack(host('ns1'), before, 1, 'nsd');
    const serving = Number((await host('ns1').ssh('date -d "$(systemctl show -p ActiveEnterTimestamp --value nsd)" +%s')).stdout.trim());

    const said: string[] = [];
    const deadline = Date.now() + 300_000;
    while (host('ns2').reboots === 0 && Date.now() < deadline) {
      const line = await ns2Looks();
      if (line !== undefined) said.push(line);
      await sleep(3_000);
    }
    await comesBack(host('ns2'), ns2Boot, 1, 'nsd');
    const passed = await awaitRun('dns', 'ok');
    const commit = await committed();

    // While ns1 answered on port 53 but its check had not run since the boot, ns2 held its reboot.
    const held = said.filter((l) => l.startsWith('reboot: peer ns1 of reboot set dns is not ready (not ready '));
    expect(held.length, said.join('\n')).toBeGreaterThan(0);
    expect(held[0]).toMatch(/ns1-dns \(not run since the boot\)\); the reboot carries over$/);
    expect(said.filter((l) => l.includes('does not answer'))).toEqual([]);
    // On the hosts' clocks: ns1 served, then its check passed, then ns2 committed to its reboot.
    expect(serving).toBeLessThan(passed);
    expect(commit).toBeGreaterThanOrEqual(passed);
    expect([host('ns1').reboots, host('ns2').reboots]).toEqual([1, 1]);
    console.log(`reboot set readiness: ns1 nsd serving at ${serving}, ns1-dns passed at ${passed} (+${passed - serving} s), ns2 committed at ${commit} (+${commit - passed} s after the pass); ns2 held ${held.length} times`);
  }, TEST_TIMEOUT_MS);

  let ns2Boot: string;

  it('GIVEN ns2 in its slot, WHEN ns1 comes back from a reboot with its dns check failing while nsd answers, THEN ns2 does not reboot, and past the bound ns1 is CRITICAL and says the set holds', async () => {
    // The kernel packages' flags went with the reboots (/var/run is a tmpfs): pending again, as a new kernel's postinst leaves it.
    for (const name of NAMES) expect((await host(name).ssh('touch /var/run/reboot-required')).exitCode).toBe(0);
    await planAndApply(clock(-32, SECOND_ZONE), SECOND_ZONE);
    await ns2InItsWindow();
    // The zone loses its record on disk; nsd serves the one it loaded until it restarts.
    expect((await host('ns1').ssh('cat > /etc/nsd/example.test.zone', { input: zone(false) })).exitCode).toBe(0);
    expect((await host('ns1').ssh(`dig +short @${host('ns1').address} www.example.test A`)).stdout.trim()).toBe('192.0.2.80');
    const before = await bootId(host('ns1'));
    ns2Boot = await bootId(host('ns2'));
    await host('ns1').ssh('systemctl reboot').catch(() => undefined);
    await comesBack(host('ns1'), before, 2, 'nsd');
    const failed = await awaitRun('dns', 'critical');
    // nsd answers on port 53 all the same: the probe alone would let ns2 go.
    const probe = await host('ns2').ssh(`timeout 10 bash -c 'exec 3<>/dev/tcp/${host('ns1').address}/53' && echo answers`);
    expect(probe.stdout.trim()).toBe('answers');

    const line = await ns2Looks();
    expect(line).toMatch(/^reboot: peer ns1 of reboot set dns is not ready \(not ready \d+ s after booting: ns1-dns \(critical\)\); the reboot carries over$/);
    expect(host('ns2').reboots).toBe(1);
    expect(await bootId(host('ns2'))).toBe(ns2Boot);

    // Past the bound (counted from ns1's boot on its clock), its reboot-required check is CRITICAL and alerts.
    const deadline = Date.now() + 480_000;
    let state = '';
    while (!state.includes('severity=critical') && Date.now() < deadline) {
      await sleep(10_000);
      state = (await host('ns1').ssh('systemctl start upkeep-check-ns1-reboot.service; cat /var/lib/upkeep/checks/ns1-reboot /var/lib/upkeep/checks/ns1-reboot.message')).stdout;
    }
    expect(state).toContain('severity=critical');
    expect(state).toMatch(/CRITICAL: not ready (\d+) s after booting: ns1-dns \(critical\); the other members of reboot set dns hold their reboots until this host is ready/);
    const up = Number(/not ready (\d+) s after booting/.exec(state)![1]);
    expect(up).toBeGreaterThan(READY_WITHIN);
    const alert = hits.map((h) => JSON.parse(h.body) as Record<string, unknown>).find((b) => b.host === 'ns1' && b.check === 'reboot' && b.status === 'firing');
    expect(alert?.severity).toBe('critical');
    expect(String(alert?.message)).toContain('hold their reboots');
    // Still held.
    expect(await ns2Looks()).toMatch(/^reboot: peer ns1 of reboot set dns is not ready/);
    expect(host('ns2').reboots).toBe(1);
    console.log(`reboot set readiness: ns1-dns critical at ${failed}; ns1 CRITICAL (reboot-required) ${up} s after its boot (bound ${READY_WITHIN} s)`);
  }, TEST_TIMEOUT_MS);

  it('WHEN ns1 is fixed and its check passes, THEN ns2 reboots, after that pass', async () => {
    expect((await host('ns1').ssh('cat > /etc/nsd/example.test.zone', { input: zone(true) })).exitCode).toBe(0);
    expect((await host('ns1').ssh('systemctl restart nsd && systemctl start upkeep-check-ns1-dns.service')).exitCode).toBe(0);
    const passed = await awaitRun('dns', 'ok');
    // ns2 goes down while it answers, or tells of it.
    const line = await ns2Looks();
    if (line !== undefined) expect(line).toMatch(/^reboot: rebooting in the window that opened /);
    await comesBack(host('ns2'), ns2Boot, 2, 'nsd');
    const commit = await committed();
    expect(commit).toBeGreaterThanOrEqual(passed);
    expect([host('ns1').reboots, host('ns2').reboots]).toEqual([2, 2]);
    console.log(`reboot set readiness: ns1-dns passed again at ${passed}, ns2 committed at ${commit} (+${commit - passed} s)`);
  }, TEST_TIMEOUT_MS);
});
