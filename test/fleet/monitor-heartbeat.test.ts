// Watching the watcher on real hosts: a monitor (mon1) pings a dead-man's switch (a receiver in
// this test, healthchecks.io style) while its checks run and serves the time they last all ran;
// web1's monitor-heartbeat check reads it. Stopping the monitor's timers must stop the pings and
// make web1 alert.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { compileHost } from '../../lib/compile/host.ts';
import { defineFleet } from '../../lib/policy/model.ts';
import { prepareFleet } from '../../lib/policy/prepare.ts';
import { FLEET_HOOK_TIMEOUT_MS, fleetAvailable, startFleet, type TestFleet, type TestHost } from './testbed.ts';

const INTERVAL = 10;
const MAX_AGE = 30;
const FAILURE_THRESHOLD = 2;
const SLACK = 5;
/** The key part of the dead-man's switch URL: a secret that must not show up in logs. */
const KEY = 'f3a9c1d2-heartbeat-key';

interface Hit {
  readonly at: number;
  readonly path: string;
  readonly body: string;
}

describe.skipIf(!fleetAvailable('monitor heartbeat on real hosts'))('a silent monitor is noticed by its dead-man\'s switch and by the hosts it watches', () => {
  let fleet: TestFleet;
  let mon: TestHost;
  let web: TestHost;
  let server: Server;
  let base = '';
  const hits: Hit[] = [];
  const pings = () => hits.filter((h) => h.path.startsWith(`/ping/${KEY}`));
  const hooks = () => hits.filter((h) => h.path === '/hook').map((h) => ({ at: h.at, ...JSON.parse(h.body) }) as { at: number; status: string; host: string; check: string; message: string });

  async function install(host: TestHost, files: readonly { path: string; mode: string; content?: string }[], units: readonly string[], kick: readonly string[]) {
    const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
    const lines = files.map((f) => `mkdir -p "$(dirname ${q(f.path)})" && echo ${Buffer.from(f.content!).toString('base64')} | base64 -d > ${q(f.path)} && chmod ${f.mode} ${q(f.path)}`);
    // /var/lib/upkeep as the agent makes it (0700 root): the liveness server, a DynamicUser, must not need it.
    const r = await host.ssh('sh -s', { input: `set -e\n(umask 077 && mkdir -p /var/lib/upkeep)\n${lines.join('\n')}\nsystemctl daemon-reload\nsystemctl enable --now ${units.join(' ')}\n${kick.map((u) => `systemctl start ${u}`).join('\n')}\n` });
    expect(r.stderr.replace(/^Created symlink .*\n/gm, '')).toBe('');
    expect(r.exitCode).toBe(0);
  }

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        hits.push({ at: Date.now() / 1000, path: req.url ?? '', body });
        res.writeHead(200).end('ok\n');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    fleet = await startFleet(['mon1', 'web1']);
    mon = fleet.host('mon1');
    web = fleet.host('web1');

    const exempt = { updates: 'this test watches the monitor only', backups: 'this test watches the monitor only' };
    const routes = [{ name: 'pager', webhook: `${base}/hook` }];
    const spec = defineFleet({
      name: 'heartbeat',
      groups: { staging: { staging: true } },
      hosts: {
        mon1: {
          group: 'staging',
          roles: ['monitor'],
          address: mon.address,
          hostKey: mon.hostKey,
          exempt,
          monitoring: { interval: `${INTERVAL}s`, routes, heartbeat: { url: { env: 'HEARTBEAT_URL' } }, checks: { disk: { kind: 'disk-usage' } } },
        },
        web1: {
          group: 'staging',
          address: web.address,
          hostKey: web.hostKey,
          exempt,
          monitoring: { interval: `${INTERVAL}s`, failureThreshold: FAILURE_THRESHOLD, routes, checks: { monitor: { kind: 'monitor-heartbeat', monitor: 'mon1', maxAge: `${MAX_AGE}s` } } },
        },
      },
    });
    const resolved = prepareFleet(spec);
    // The applier resolves secret references; here the one secret is the dead-man's switch URL.
    const withSecrets = (host: string) => compileHost(resolved, resolved.hosts.find((h) => h.name === host)!);
    const monState = withSecrets('mon1');
    const webState = withSecrets('web1');
    expect(monState.units).toEqual(expect.arrayContaining(['upkeep-heartbeat.timer', 'upkeep-liveness.socket']));
    await install(mon, monState.files.map((f) => (f.secret ? { ...f, content: `${base}/ping/${KEY}\n` } : f)), monState.units, ['upkeep-check-mon1-disk.service', 'upkeep-heartbeat.service']);
    await install(web, webState.files, webState.units, ['upkeep-check-web1-monitor.service']);
  }, FLEET_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    await fleet?.stop();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }, FLEET_HOOK_TIMEOUT_MS);

  it('pings while the monitor runs; once its timers stop, the pings stop and web1 alerts', { timeout: 10 * 60_000 }, async () => {
    onTestFailed(async () => {
      console.log((await mon.ssh('journalctl -u upkeep-heartbeat.service -u "upkeep-liveness@*" --no-pager | tail -n 30')).stdout);
      console.log((await web.ssh('journalctl -u upkeep-check-web1-monitor.service --no-pager | tail -n 30')).stdout);
    });
    // GIVEN a running monitor: it pings the success URL, and web1 sees it alive.
    await sleep(3 * INTERVAL * 1000);
    expect(pings().length).toBeGreaterThanOrEqual(2);
    expect(pings().map((p) => p.path)).toEqual(pings().map(() => `/ping/${KEY}`));
    expect((await web.ssh('cat /var/lib/upkeep/checks/web1-monitor')).stdout).toMatch(/^severity=ok$/m);
    // From a real heartbeat, not the grace before the first one: the liveness server answers with it.
    const served = await mon.ssh(`curl -fsS http://${mon.address}:9469/`);
    expect(served.exitCode, served.stderr).toBe(0);
    expect(served.stdout).toMatch(/^\d{10}\n$/);
    expect((await web.ssh('cat /var/lib/upkeep/checks/web1-monitor.message')).stdout).toMatch(/^OK: monitor mon1's checks all ran \d+s ago$/m);
    expect(hooks()).toEqual([]);

    // WHEN every upkeep timer of the monitor stops
    const stop = await mon.ssh("systemctl stop 'upkeep-*.timer' && systemctl is-active 'upkeep-*.timer' || true");
    expect(stop.stdout.split('\n').filter((l) => l === 'active')).toEqual([]);
    const stoppedAt = Date.now() / 1000;

    // THEN web1 alerts about the silent monitor within maxAge + threshold x (interval + 1 s) + slack,
    const bound = MAX_AGE + FAILURE_THRESHOLD * (INTERVAL + 1) + INTERVAL + SLACK;
    const end = Date.now() + (bound + 60) * 1000;
    while (!hooks().some((h) => h.status === 'firing') && Date.now() < end) await sleep(500);
    const alert = hooks().find((h) => h.status === 'firing');
    expect(alert).toMatchObject({ host: 'web1', check: 'monitor' });
    expect(alert!.message).toContain('monitor mon1 silent');
    console.log(`time from stopping the monitor to web1's alert: ${(alert!.at - stoppedAt).toFixed(1)} s (bound ${bound} s: maxAge ${MAX_AGE} s + one heartbeat interval + threshold ${FAILURE_THRESHOLD} x (interval ${INTERVAL} s + 1 s) + ${SLACK} s)`);
    expect(alert!.at - stoppedAt).toBeLessThanOrEqual(bound);
    // ... and the dead-man's switch has heard nothing since (a run in flight may finish).
    expect(pings().filter((p) => p.at > stoppedAt + SLACK)).toEqual([]);

    // The URL's key never reaches a log.
    expect((await mon.ssh('journalctl --no-pager')).stdout).not.toContain(KEY);
  });
});
