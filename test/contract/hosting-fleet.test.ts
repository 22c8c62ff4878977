// The contract, kept on a real fleet: examples/hosting/fleet.ts as it is, one test host per
// provisioned server (addresses and host keys reach bin/apply as Terraform outputs from a FAKE
// Hetzner engine, test/contract/fake-hetzner.ts) plus one standing in for the off-site storage
// box, which also runs the alert receiver the example's webhook route resolves to. The customer's
// services run on the hosts (test/contract/customer-services.ts). Then bin/apply, and the promise
// measured: no alert on a healthy fleet, faults alert within interval x threshold + delivery and
// within the SLA, recoveries are announced, and a change that breaks a staging check goes back.
//
// The tests build on each other in order, like days in the life of one fleet.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPlan } from '../../lib/cli/plan.ts';
import { createTestCa } from '../fixtures/test-ca.ts';
import { applyPlan, entries, snapshotHost, type ApplyRun } from '../fleet/apply-helpers.ts';
import { FLEET_HOOK_TIMEOUT_MS, fleetAvailable, startFleet, type TestFleet } from '../fleet/testbed.ts';
import { startAlertReceiver, type AlertReceiver, type ReceivedAlert } from './alert-receiver.ts';
import { ALERTS_NAME, installCustomerServices } from './customer-services.ts';
import { fakeHetzner } from './fake-hetzner.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const EXAMPLE = join(ROOT, 'examples/hosting/fleet.ts');
const SERVERS = ['stage1', 'web1', 'web2', 'mail1', 'ns1', 'ns2', 'backup1', 'monitor1'];
const STORAGE_BOX = 'storagebox';
const PRODUCTION = SERVERS.filter((h) => h !== 'stage1');
// The example's monitoring policy (policies/standard.ts and its route): the bounds the alerts are held to.
const INTERVAL_S = 60;
const FAILURE_THRESHOLD = 2;
const DELIVERY_S = 120;
const SLA_S = 15 * 60;
const MAIL_MAX_DELAY_S = 5 * 60;
/** Secrets of the example, as the operator's pipeline would set them. Test values only. */
const SECRETS = { HCLOUD_TOKEN: 'fake-hcloud-token-for-the-contract-fleet', ALERT_TOKEN: 'contract-alert-token', RESTIC_PASSWORD: 'contract-restic-password', PROBE_MAIL_PASSWORD: 'contract-probe-password' };

/** Seconds, to one decimal. */
const seconds = (ms: number) => Math.round(ms / 100) / 10;
const measurements: string[] = [];

describe.skipIf(!fleetAvailable('the contract fleet (test/contract/hosting-fleet.test.ts)'))('the hosting example on a real fleet keeps the monitoring contract', () => {
  let fleet: TestFleet;
  let work: string;
  let receiver: AlertReceiver;
  let pinsFile: string;
  let lastPlanDir: string | undefined;
  let planCount = 0;
  const savedEnv = { ...process.env };
  const started = Date.now();

  /** bin/plan POLICY --out DIR [--base last plan], in this process. */
  async function plan(policy: string): Promise<string> {
    planCount += 1;
    const dir = join(work, `plan-${planCount}`);
    const code = await runPlan([policy, '--out', dir, ...(lastPlanDir ? ['--base', lastPlanDir] : [])]);
    expect(code).toBe(2);
    return dir;
  }

  async function apply(dir: string): Promise<ApplyRun> {
    return applyPlan(fleet, dir, ['--host-keys', pinsFile]);
  }

  /** The test's own ssh pins the keys the hosts present after bin/apply rotated them. */
  function pinRotatedKeys(): void {
    const pins = JSON.parse(readFileSync(pinsFile, 'utf8')) as { hosts: Record<string, { rotated: string }> };
    writeFileSync(fleet.knownHostsFile, fleet.hosts.map((h) => `${h.address} ${pins.hosts[h.name]?.rotated ?? h.hostKey}\n`).join(''));
  }

  /** "severity failures successes" of every check state on a host, by check id. */
  async function checkStates(host: string): Promise<Record<string, { severity: string; successes: number; failures: number }>> {
    const out = await fleet.host(host).ssh("cd /var/lib/upkeep/checks && grep -l '^severity=' * 2>/dev/null | while read -r f; do . ./$f; echo \"$f $severity $failures $successes\"; done");
    return Object.fromEntries(out.stdout.trim().split('\n').filter(Boolean).map((line) => {
      const [id = '', severity = '', failures = '0', successes = '0'] = line.split(' ');
      return [id, { severity, failures: Number(failures), successes: Number(successes) }];
    }));
  }

  const firing = (host: string, check: string) => (a: ReceivedAlert) => a.body.status === 'firing' && a.body.host === host && a.body.check === check;
  const resolved = (host: string, check: string) => (a: ReceivedAlert) => a.body.status === 'resolved' && a.body.host === host && a.body.check === check;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'upkeep-contract-'));
    const bootStart = Date.now();
    fleet = await startFleet([...SERVERS, STORAGE_BOX], { bootTimeoutMs: 300_000 });
    measurements.push(`boot of ${fleet.hosts.length} hosts: ${seconds(Date.now() - bootStart)}s`);
    const ca = createTestCa(join(work, 'ca'));
    const servicesStart = Date.now();
    await installCustomerServices(fleet, { ca, storageBox: STORAGE_BOX, probePassword: SECRETS.PROBE_MAIL_PASSWORD });
    measurements.push(`customer services: ${seconds(Date.now() - servicesStart)}s`);
    // A STAND-IN for backup1's Hetzner volume (a container has none to attach), mounted at the
    // backup root as upkeep-backup-volume.service would: a directory of the host's own, bound there.
    const volume = await fleet.host('backup1').ssh('mkdir -p /var/lib/volume-stand-in /srv/restic && mount --bind /var/lib/volume-stand-in /srv/restic');
    expect(volume.exitCode, volume.stderr).toBe(0);
    receiver = await startAlertReceiver(fleet.host(STORAGE_BOX).address, ca.issue('alerts', [ALERTS_NAME]));
    const fake = fakeHetzner(join(work, 'hetzner'), SERVERS.map((h) => fleet.host(h)));
    Object.assign(process.env, SECRETS, fake.env, { NO_COLOR: '1' });
    pinsFile = join(work, 'upkeep-host-keys.json');
  }, FLEET_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    process.env = savedEnv;
    console.log(`contract fleet measurements:\n  ${[...measurements, `whole suite: ${seconds(Date.now() - started)}s`].join('\n  ')}`);
    await receiver?.close();
    await fleet?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  }, FLEET_HOOK_TIMEOUT_MS);

  it('applies the example through the provisioning path, and every check on every host is OK a few minutes later with no alert', async () => {
    const dir = await plan(EXAMPLE);
    const applyStart = Date.now();
    const run = await apply(dir);
    measurements.push(`first bin/apply: ${seconds(Date.now() - applyStart)}s`);
    expect(run.exitCode, run.stderr).toBe(0);
    lastPlanDir = dir;
    pinRotatedKeys();
    for (const step of ['terraform-init', 'terraform-plan', 'terraform-output']) expect(entries(run, '(fleet)', step)[0]?.result, step).toBe('ok');
    for (const host of SERVERS) expect(entries(run, host, 'health-gate')[0]?.result, `${host}: ${entries(run, host, 'health-gate')[0]?.detail}`).toBe('ok');
    // stage1's gate ran the checks monitor1 runs on it, or said they were not there yet (first rollout).
    expect(entries(run, 'stage1', 'health-gate')[0]?.detail ?? '').toContain('upkeep-check-stage1-http.service is not on monitor1 yet');

    // Every check has run at least failureThreshold times on its timer (the first after 1 min).
    const healthyStart = Date.now();
    const deadline = Date.now() + 6 * 60_000;
    let states: Record<string, Record<string, { severity: string; successes: number; failures: number }>> = {};
    for (;;) {
      states = Object.fromEntries(await Promise.all(SERVERS.map(async (h) => [h, await checkStates(h)] as const)));
      const all = Object.values(states).flatMap((s) => Object.values(s));
      // failureThreshold successes in a row on every check: no failure streak can have alerted.
      if (all.length > 0 && all.every((c) => c.successes >= FAILURE_THRESHOLD)) break;
      if (all.some((c) => c.severity !== 'ok') || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 10_000));
    }
    measurements.push(`healthy fleet, every check OK ${FAILURE_THRESHOLD}+ times in a row: ${seconds(Date.now() - healthyStart)}s after the apply`);
    const notOk = Object.entries(states).flatMap(([host, s]) => Object.entries(s).filter(([, c]) => c.severity !== 'ok').map(([id, c]) => `${host}: ${id} ${c.severity}`));
    expect(notOk).toEqual([]);
    // The monitor watches every web, mail and nameserver host; every host watches itself.
    expect(Object.keys(states.monitor1 ?? {}).sort()).toEqual(expect.arrayContaining(['web1-http', 'web1-tls-expiry', 'mail1-mail-delivery', 'mail1-smtp', 'ns1-dns-soa', 'ns2-dns-soa', 'stage1-http']));
    expect(Object.keys(states.web1 ?? {})).toContain('web1-backup-freshness');
    expect(Object.keys(states.web1 ?? {})).not.toContain('web1-smart');
    expect(receiver.alerts.map((a) => a.body)).toEqual([]);
  }, 15 * 60_000);

  it("pins backup1's provisioned address and rotated key on every backup client, and web1's repository is made through that pin on backup1's volume", async () => {
    const backup1 = fleet.host('backup1');
    const pins = JSON.parse(readFileSync(pinsFile, 'utf8')) as { hosts: Record<string, { rotated: string }> };
    const clients = SERVERS.filter((h) => h !== 'backup1');
    const pinned = await Promise.all(clients.map(async (h) => [h, (await fleet.host(h).ssh('cat /var/lib/upkeep/backup-host/known_hosts')).stdout] as const));
    expect(Object.fromEntries(pinned)).toEqual(Object.fromEntries(clients.map((h) => [h, `${backup1.address} ${pins.hosts.backup1!.rotated}\n`])));
    // restic over web1's compiled ssh command, as its backup runs it: the repository is created on backup1.
    const init = await fleet.host('web1').ssh('set -a; . /etc/upkeep/restic/backup.env; set +a; restic -o "rclone.program=$UPKEEP_RCLONE_PROGRAM" -o rclone.args= init', { timeoutMs: 300_000 });
    expect(init.exitCode, init.stderr).toBe(0);
    const where = await backup1.ssh('findmnt -n -o TARGET -T /srv/restic/web1/config; test -f /var/lib/volume-stand-in/web1/config && echo on-the-stand-in');
    expect(where.stdout).toBe('/srv/restic\non-the-stand-in\n');
  }, 10 * 60_000);

  it('alerts within interval x threshold + delivery and the SLA when the web server of web1, mail delivery on mail1 or DNS on ns1 stops; announces the recoveries', async () => {
    const faultAt = Date.now();
    await Promise.all([
      fleet.host('web1').ssh('systemctl stop nginx.service'),
      fleet.host('mail1').ssh('systemctl stop postfix.service'),
      fleet.host('ns1').ssh('systemctl stop nsd.service'),
    ]);
    const bound = INTERVAL_S * FAILURE_THRESHOLD + DELIVERY_S;
    const waitMs = (bound + MAIL_MAX_DELAY_S + 60) * 1000;
    const [web, mail, dns] = await Promise.all([
      receiver.waitFor(firing('web1', 'http'), faultAt, waitMs),
      receiver.waitFor(firing('mail1', 'mail-delivery'), faultAt, waitMs),
      receiver.waitFor(firing('ns1', 'dns-soa'), faultAt, waitMs),
    ]);
    const delays = { web1: seconds(web.at - faultAt), mail1: seconds(mail.at - faultAt), ns1: seconds(dns.at - faultAt) };
    measurements.push(`fault -> alert: web1 http ${delays.web1}s, mail1 mail-delivery ${delays.mail1}s, ns1 dns-soa ${delays.ns1}s (bound ${bound}s, mail ${bound + MAIL_MAX_DELAY_S}s; SLA ${SLA_S}s)`);
    expect(delays.web1).toBeLessThanOrEqual(bound);
    expect(delays.ns1).toBeLessThanOrEqual(bound);
    // The mail check may wait up to its maximum delay for the probe before it fails.
    expect(delays.mail1).toBeLessThanOrEqual(bound + MAIL_MAX_DELAY_S);
    for (const d of Object.values(delays)) expect(d).toBeLessThanOrEqual(SLA_S);
    expect(web.authorization).toBe(`Bearer ${SECRETS.ALERT_TOKEN}`);
    expect(web.body).toMatchObject({ kind: 'http', severity: 'critical', from: 'monitor1' });
    expect(dns.body).toMatchObject({ kind: 'dns', severity: 'critical' });
    // ns2 answers all along: no alert, and its check is OK.
    expect(receiver.alerts.filter((a) => a.at >= faultAt && a.body.host === 'ns2')).toEqual([]);
    expect((await checkStates('monitor1'))['ns2-dns-soa']?.severity).toBe('ok');

    const fixAt = Date.now();
    await Promise.all([
      fleet.host('web1').ssh('systemctl start nginx.service'),
      fleet.host('mail1').ssh('systemctl start postfix.service'),
      fleet.host('ns1').ssh('systemctl start nsd.service'),
    ]);
    const recovery = await Promise.all([
      receiver.waitFor(resolved('web1', 'http'), fixAt, waitMs),
      receiver.waitFor(resolved('mail1', 'mail-delivery'), fixAt, waitMs),
      receiver.waitFor(resolved('ns1', 'dns-soa'), fixAt, waitMs),
    ]);
    measurements.push(`repair -> resolved notice: ${recovery.map((r) => `${r.body.host} ${seconds(r.at - fixAt)}s`).join(', ')}`);
  }, 20 * 60_000);

  it('reports, and does not blame, a unit that was already failing on staging before a good change; the change goes through', async () => {
    const stage1 = fleet.host('stage1');
    // Something of the customer's fails on stage1, unrelated to upkeep; its failed-units check sees it.
    await stage1.ssh('systemd-run --unit=legacy-sync.service /bin/false');
    const seen = Date.now() + 3 * 60_000;
    while ((await checkStates('stage1'))['stage1-failed-units']?.severity !== 'critical') {
      if (Date.now() > seen) throw new Error('the failed-units check of stage1 did not see legacy-sync.service fail');
      await new Promise((r) => setTimeout(r, 5_000));
    }
    try {
      // The change: stage1's disk-usage limit goes from 90% to 95%.
      const policy = join(work, 'looser-disk.ts');
      writeFileSync(policy, [
        `import fleet from ${JSON.stringify(EXAMPLE)};`,
        'const spec = structuredClone(fleet);',
        "spec.hosts.stage1.monitoring = { checks: { ...spec.hosts.stage1.monitoring.checks, 'disk-usage': { kind: 'disk-usage', maxPercent: 95 } } };",
        'export default spec;',
        '',
      ].join('\n'));
      const dir = await plan(policy);
      const run = await apply(dir);
      expect(run.exitCode, run.stderr).toBe(0);
      lastPlanDir = dir;
      const gate = entries(run, 'stage1', 'health-gate')[0];
      expect(gate?.result).toBe('ok');
      expect(gate?.detail).toContain('units already failed before the change: legacy-sync.service');
      expect(gate?.detail).toContain('check upkeep-check-stage1-failed-units.service is CRITICAL (success 2), as it already was before the change');
      expect(entries(run, 'stage1', 'rollback')).toEqual([]);
      expect((await stage1.ssh("grep -c \"UPKEEP_DISK_MAX_PERCENT='95'\" /etc/upkeep/checks/stage1-disk-usage.env")).stdout.trim()).toBe('1');
    } finally {
      await stage1.ssh('systemctl reset-failed legacy-sync.service');
    }
  }, 10 * 60_000);

  it('stops at a change that makes a real check on staging fail: staging goes back byte for byte, production is untouched', async () => {
    // The change: stage1's disk-usage limit drops below what its disk uses.
    const policy = join(work, 'tight-disk.ts');
    writeFileSync(policy, [
      `import fleet from ${JSON.stringify(EXAMPLE)};`,
      'const spec = structuredClone(fleet);',
      "spec.hosts.stage1.monitoring = { checks: { ...spec.hosts.stage1.monitoring.checks, 'disk-usage': { kind: 'disk-usage', maxPercent: 1 } } };",
      'export default spec;',
      '',
    ].join('\n'));
    const dir = await plan(policy);
    const stagingBefore = await snapshotHost(fleet.host('stage1'));
    const productionBefore = await Promise.all(PRODUCTION.map((h) => snapshotHost(fleet.host(h), { mtimes: true })));
    const run = await apply(dir);
    expect(run.exitCode, run.stderr).toBe(3);
    const gate = entries(run, 'stage1', 'health-gate')[0];
    expect(gate?.result).toBe('failed');
    expect(gate?.detail).toContain('check upkeep-check-stage1-disk-usage.service is CRITICAL');
    expect(entries(run, 'stage1', 'rollback')[0]?.result).toBe('rolled-back');
    expect(await snapshotHost(fleet.host('stage1'))).toBe(stagingBefore);
    expect(await Promise.all(PRODUCTION.map((h) => snapshotHost(fleet.host(h), { mtimes: true })))).toEqual(productionBefore);
    for (const h of PRODUCTION) expect(entries(run, h, 'apply')).toEqual([]);
  }, 10 * 60_000);
});
