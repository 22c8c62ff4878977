// Alert routes on a real host: a web check compiled from a policy runs under systemd on a Debian
// test host every 10 s; the site it fetches (served by this test) breaks, and the alert must reach
// a real Alertmanager (Debian's prometheus-alertmanager, started here, which forwards to a webhook
// receiver of this test as it would to a pager), a real postfix on the host (read from the
// mailbox) and a webhook with reminders; then the site recovers and every route hears of it.
// Along the way the host's metrics file for node_exporter must parse and carry the check's state.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { compileHost } from '../../lib/compile/host.ts';
import { defineFleet } from '../../lib/policy/model.ts';
import { prepareFleet } from '../../lib/policy/prepare.ts';
import { programsAvailable } from '../programs.ts';
import { FLEET_HOOK_TIMEOUT_MS, fleetAvailable, startFleet, type TestFleet, type TestHost } from './testbed.ts';

const INTERVAL = 10;
const REPEAT = 20;
const FAILURE_THRESHOLD = 2;
/** Timer accuracy (AccuracySec=1s), the run itself and the post, on a shared machine. */
const SLACK = 5;

interface Hit {
  readonly at: number;
  readonly path: string;
  readonly body: string;
}

/** An HTTP server on 127.0.0.1: /site answers 200 or 503 as the test says; every POST is recorded. */
async function receiver(): Promise<{ server: Server; url: string; hits: Hit[]; setHealthy: (ok: boolean) => void }> {
  const hits: Hit[] = [];
  let healthy = true;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (req.method === 'POST') hits.push({ at: Date.now() / 1000, path: req.url ?? '', body });
      if (req.url === '/site') res.writeHead(healthy ? 200 : 503).end(healthy ? 'ok\n' : 'down\n');
      else res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits, setHealthy: (ok) => (healthy = ok) };
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(500);
  }
}

interface AmAlert {
  readonly labels: Record<string, string>;
  readonly startsAt: string;
  readonly endsAt: string;
  readonly status: { readonly state: string };
}

const ready = fleetAvailable('alert routes on a real host') && programsAvailable('test/fleet/alert-routes.test.ts', ['prometheus-alertmanager', 'promtool']);

describe.skipIf(!ready)('alert routes from a real host to a real Alertmanager, postfix and a webhook', () => {
  let fleet: TestFleet;
  let vm: TestHost;
  let alertmanager: ChildProcess;
  let amUrl = '';
  let amDir = '';
  let site: Awaited<ReturnType<typeof receiver>>;
  const unit = 'upkeep-check-web1-site';

  const amAlerts = async (): Promise<AmAlert[]> => {
    const res = await fetch(`${amUrl}/api/v2/alerts?filter=host%3D%22web1%22`);
    return (await res.json()) as AmAlert[];
  };
  /** Notifications Alertmanager forwarded to its webhook receiver (this test's /am path). */
  const amNotifications = () => site.hits.filter((h) => h.path === '/am').map((h) => ({ at: h.at, ...JSON.parse(h.body) }) as { at: number; status: string; alerts: AmAlert[] });
  const hooks = () => site.hits.filter((h) => h.path === '/hook').map((h) => ({ at: h.at, ...JSON.parse(h.body) }) as { at: number; status: string; reminder: boolean; since: string; severity: string });
  const mailbox = async () => (await vm.ssh('cat /var/mail/root 2>/dev/null || true')).stdout;
  /** The host's metrics file for node_exporter, checked by Prometheus' own parser (promtool). */
  const metrics = async () => {
    const listing = (await vm.ssh('ls -A /var/lib/prometheus/node-exporter')).stdout;
    // Written atomically: no temporary file is ever left beside it.
    expect(listing).toBe('upkeep.prom\n');
    const text = (await vm.ssh('cat /var/lib/prometheus/node-exporter/upkeep.prom')).stdout;
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(lint.stdout + lint.stderr).toBe('');
    expect(lint.status).toBe(0);
    return text;
  };
  const SITE = 'host="web1",check="site",kind="http"';

  beforeAll(async () => {
    site = await receiver();
    const port = await freePort();
    amUrl = `http://127.0.0.1:${port}`;
    amDir = mkdtempSync(join(tmpdir(), 'upkeep-alertmanager-'));
    writeFileSync(
      join(amDir, 'alertmanager.yml'),
      [
        'route: { receiver: test, group_by: [host, check], group_wait: 1s, group_interval: 1s, repeat_interval: 1h }',
        `receivers: [{ name: test, webhook_configs: [{ url: "${site.url}/am", send_resolved: true }] }]`,
        '',
      ].join('\n'),
    );
    alertmanager = spawn('prometheus-alertmanager', [
      `--config.file=${join(amDir, 'alertmanager.yml')}`,
      `--storage.path=${amDir}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
    ], { stdio: 'ignore' });
    await until('Alertmanager to be ready', 60_000, async () => ((await fetch(`${amUrl}/-/ready`).catch(() => undefined))?.ok ? true : undefined));

    fleet = await startFleet(['web1'], { extraPackages: ['postfix'], bootTimeoutMs: 300_000 });
    vm = fleet.host('web1');
    // The hosts share the machine's network: postfix's SMTP service listens on this host's own
    // address only (inet_interfaces refuses an address that no interface carries by itself).
    const a = vm.address;
    const postfix = await vm.ssh(`postconf -MX smtp/inet && postconf -M "${a}:smtp/inet=${a}:smtp inet n - y - - smtpd" && postconf -e myhostname=web1 && systemctl restart postfix && systemctl is-active postfix@-`);
    expect(postfix.stdout.trim()).toBe('active');

    const spec = defineFleet({
      name: 'alerts',
      groups: { staging: { staging: true } },
      hosts: {
        web1: {
          group: 'staging',
          address: vm.address,
          hostKey: vm.hostKey,
          exempt: { updates: 'this test watches alert routes only', backups: 'this test watches alert routes only' },
          monitoring: {
            interval: `${INTERVAL}s`,
            failureThreshold: FAILURE_THRESHOLD,
            recoveryThreshold: 2,
            routes: [
              { name: 'alertmanager', alertmanager: amUrl },
              { name: 'mail', email: { to: ['root@localhost'], server: `smtp://${vm.address}` } },
              { name: 'pager', webhook: `${site.url}/hook`, repeatEvery: `${REPEAT}s` },
            ],
            checks: { site: { kind: 'http', url: `${site.url}/site` } },
          },
        },
      },
    });
    const resolved = prepareFleet(spec);
    const state = compileHost(resolved, resolved.hosts[0]);
    // What Debian's prometheus-node-exporter package creates for its textfile collector.
    expect((await vm.ssh('mkdir -p /var/lib/prometheus/node-exporter')).exitCode).toBe(0);
    const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
    const install = state.files.map((f) => `mkdir -p "$(dirname ${q(f.path)})" && echo ${Buffer.from(f.content!).toString('base64')} | base64 -d > ${q(f.path)} && chmod ${f.mode} ${q(f.path)}`);
    const r = await vm.ssh('sh -s', { input: `set -e\n${install.join('\n')}\nsystemctl daemon-reload\nsystemctl enable --now ${state.units.join(' ')}\nsystemctl start ${unit}.service\n` });
    expect(r.stderr.replace(/^Created symlink .*\n/gm, '')).toBe('');
    expect(r.exitCode).toBe(0);
  }, FLEET_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    alertmanager?.kill('SIGTERM');
    await fleet?.stop();
    await new Promise<void>((resolve) => (site ? site.server.close(() => resolve()) : resolve()));
    if (amDir) rmSync(amDir, { recursive: true, force: true });
  }, FLEET_HOOK_TIMEOUT_MS);

  it('alerts every route with the first failure as startsAt, reminds, re-sends to Alertmanager, and resolves', { timeout: 10 * 60_000 }, async () => {
    onTestFailed(async () => {
      console.log((await vm.ssh(`journalctl -u ${unit}.service --no-pager | tail -n 40; cat /var/lib/upkeep/checks/*`)).stdout);
    });
    // GIVEN a healthy site, checked a few times: nobody is told anything.
    await sleep(2 * INTERVAL * 1000);
    expect((await vm.ssh(`cat /var/lib/upkeep/checks/web1-site`)).stdout).toMatch(/^severity=ok$/m);
    expect(await amAlerts()).toEqual([]);
    expect(hooks()).toEqual([]);
    expect(await mailbox()).toBe('');
    expect(await metrics()).toContain(`upkeep_check_status{${SITE}} 0\n`);

    // WHEN the site breaks
    const brokeAt = Date.now() / 1000;
    site.setHealthy(false);

    // THEN Alertmanager holds the alert, labelled, starting at the check's first failure.
    const [alert] = await until('the alert in Alertmanager', (FAILURE_THRESHOLD + 1) * INTERVAL * 1000 + 60_000, async () => {
      const alerts = await amAlerts();
      return alerts.length > 0 ? alerts : undefined;
    });
    const alertedAt = Date.now() / 1000;
    expect(alert.labels).toEqual({ alertname: 'UpkeepCheckFailing', host: 'web1', check: 'site', kind: 'http', severity: 'critical' });
    expect(alert.status.state).toBe('active');
    const since = Number(/^failing_since=(\d+)$/m.exec((await vm.ssh('cat /var/lib/upkeep/checks/web1-site')).stdout)![1]);
    expect(Date.parse(alert.startsAt) / 1000).toBe(since);
    expect(since).toBeGreaterThanOrEqual(Math.floor(brokeAt));
    expect(since).toBeLessThanOrEqual(brokeAt + INTERVAL + SLACK);
    // Runs come every interval plus the timer's accuracy (AccuracySec=1s), so the bound is
    // threshold x (interval + 1 s) + the run and the post.
    const bound = FAILURE_THRESHOLD * (INTERVAL + 1) + SLACK;
    console.log(`time to alert in Alertmanager: ${(alertedAt - brokeAt).toFixed(1)} s (bound ${bound} s: threshold ${FAILURE_THRESHOLD} x (interval ${INTERVAL} s + 1 s) + ${SLACK} s)`);
    expect(alertedAt - brokeAt).toBeLessThanOrEqual(bound);

    // ... the metrics file says so too, in a form Prometheus parses.
    const failing = await metrics();
    expect(failing).toContain(`upkeep_check_status{${SITE}} 2\n`);
    expect(failing).toContain(`upkeep_check_alerting{${SITE}} 1\n`);
    expect(failing).toMatch(new RegExp(`^upkeep_check_failures\\{${SITE}\\} [2-9]$`, 'm'));

    // ... Alertmanager notified its receiver, with the same labels and startsAt.
    const firing = await until('Alertmanager to notify its receiver', 30_000, () => amNotifications().find((n) => n.status === 'firing'));
    expect(firing.alerts[0].labels).toMatchObject({ host: 'web1', check: 'site', kind: 'http', severity: 'critical' });
    expect(Date.parse(firing.alerts[0].startsAt) / 1000).toBe(since);

    // ... the postfix on the host delivered the mail to the mailbox.
    const mail = await until('the alert mail in /var/mail/root', 60_000, async () => ((await mailbox()).includes('FIRING') ? mailbox() : undefined));
    expect(mail).toContain('Subject: [upkeep] FIRING: site on web1 is critical');
    expect(mail).toContain('answered 503');

    // ... and while the site stays down, the webhook gets reminders every repeatEvery, and every
    // run re-sends to Alertmanager (its endsAt moves forward, so the alert never lapses).
    const reminders = await until('two reminders', (3 * REPEAT + 3 * INTERVAL) * 1000, () => (hooks().filter((h) => h.reminder).length >= 2 ? hooks() : undefined));
    expect(reminders.map((h) => [h.status, h.reminder])).toEqual([['firing', false], ['firing', true], ['firing', true]]);
    expect(new Set(reminders.map((h) => Date.parse(h.since) / 1000))).toEqual(new Set([since]));
    const gaps = reminders.slice(1).map((h, i) => h.at - reminders[i].at);
    console.log(`webhook reminder gaps: ${gaps.map((g) => g.toFixed(1)).join(', ')} s (repeatEvery ${REPEAT} s, interval ${INTERVAL} s)`);
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(REPEAT - 2);
      expect(gap).toBeLessThanOrEqual(REPEAT + INTERVAL + SLACK);
    }
    const [later] = await amAlerts();
    expect(Date.parse(later.endsAt)).toBeGreaterThan(Date.parse(alert.endsAt));
    expect(later.startsAt).toBe(alert.startsAt);
    // Alertmanager's own repeat_interval (1h) decides about repeating notifications, not us.
    expect(amNotifications().filter((n) => n.status === 'firing')).toHaveLength(1);

    // WHEN the site recovers
    const fixedAt = Date.now() / 1000;
    site.setHealthy(true);

    // THEN Alertmanager is told the alert ended (endsAt now, long before it would have lapsed).
    const resolved = await until('the resolved notification from Alertmanager', 3 * INTERVAL * 1000 + 60_000, () => amNotifications().find((n) => n.status === 'resolved'));
    const endsAt = Date.parse(resolved.alerts[0].endsAt) / 1000;
    expect(resolved.alerts[0].labels).toMatchObject({ host: 'web1', check: 'site', severity: 'critical' });
    expect(endsAt).toBeGreaterThanOrEqual(Math.floor(fixedAt));
    expect(endsAt).toBeLessThanOrEqual(fixedAt + 2 * INTERVAL + SLACK);
    expect(await amAlerts()).toEqual([]);
    const resolvedHook = await until('the webhook recovery notice', 30_000, () => hooks().find((h) => h.status === 'resolved'));
    expect(resolvedHook.severity).toBe('ok');
    const recovered = await until('the recovery mail', 60_000, async () => ((await mailbox()).includes('RESOLVED') ? mailbox() : undefined));
    expect(recovered).toContain('Subject: [upkeep] RESOLVED: site on web1');
    const healthy = await metrics();
    expect(healthy).toContain(`upkeep_check_status{${SITE}} 0\n`);
    expect(healthy).toContain(`upkeep_check_alerting{${SITE}} 0\n`);
    // No reminder after recovery.
    await sleep(REPEAT * 1000);
    expect(hooks().filter((h) => h.at > resolvedHook.at)).toEqual([]);
  });
});
