// Alert delivery as run-check.sh does it, with the real run-check.sh, alert.sh and send-webhook.sh
// (copied beside a FAKE check program that answers what the test says) against webhook receivers
// on 127.0.0.1 that take a notice or refuse it (401, as for an expired token) as the test says.
// Every route must hear of every incident: of an escalation, and of what it missed while down.
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { renderEnvFile } from '../../lib/compile/env-file.ts';
import { RUNTIME_SOURCE, tempDir } from './run-script.ts';
import { programsAvailable } from '../programs.ts';

interface Notice {
  readonly route: string;
  readonly status: string;
  readonly reminder: boolean;
  readonly severity: string;
}

const EXIT = { ok: 0, warning: 1, critical: 2, unknown: 3 } as const;
type Severity = keyof typeof EXIT;

describe.skipIf(!programsAvailable('test/runtime/alert-delivery.test.ts', ['curl']))('run-check.sh delivering alerts to every route', () => {
  let server: Server;
  let base = '';
  const notices: Notice[] = [];
  /** What the Alertmanager API took: arrays of alerts. */
  const alertmanager: { labels: Record<string, string>; startsAt: string; endsAt: string }[][] = [];
  /** Routes that refuse what they are sent (401). */
  const refusing = new Set<string>();

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const route = (req.url ?? '').slice(1);
        if (refusing.has(route)) return void res.writeHead(401).end('token expired\n');
        if (route === 'api/v2/alerts') {
          alertmanager.push(JSON.parse(body));
          return void res.writeHead(200).end();
        }
        const { status, reminder, severity } = JSON.parse(body);
        notices.push({ route, status, reminder, severity });
        res.writeHead(202).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => refusing.clear());

  /** A host: the runtime programs with a FAKE check, the check's and routes' settings, its state. */
  function host(routes: readonly string[], repeatSeconds?: number) {
    const dir = tempDir();
    for (const name of readdirSync(RUNTIME_SOURCE)) copyFileSync(join(RUNTIME_SOURCE, name), join(dir, name));
    // The FAKE check answers with the exit status and line in the file `answer`.
    writeFileSync(join(dir, 'check-fake.sh'), `#!/bin/sh\nread -r rc line <'${dir}/answer'\necho "$line"\nexit "$rc"\n`);
    chmodSync(join(dir, 'check-fake.sh'), 0o755);
    for (const route of routes) writeFileSync(join(dir, `${route}.env`), renderEnvFile('route', { UPKEEP_ROUTE_KIND: 'webhook', UPKEEP_WEBHOOK: `${base}/${route}`, ...(repeatSeconds !== undefined && { UPKEEP_ROUTE_REPEAT_SECONDS: repeatSeconds }) }));
    writeFileSync(
      join(dir, 'check.env'),
      renderEnvFile('check', { UPKEEP_CHECK_ID: 'web1-disk', UPKEEP_CHECK_KIND: 'fake', UPKEEP_CHECK_SUBJECT: 'web1', UPKEEP_CHECK_NAME: 'disk', UPKEEP_CHECK_INTERVAL: 60, UPKEEP_FAILURE_THRESHOLD: 1, UPKEEP_RECOVERY_THRESHOLD: 1, UPKEEP_ROUTES: routes.join(' ') }),
    );
    const state = join(dir, 'state');
    /** One run of the check answering `severity`: its exit status and what it said on stderr. */
    const run = (severity: Severity): Promise<{ status: number | null; stderr: string }> => {
      writeFileSync(join(dir, 'answer'), `${EXIT[severity]} ${severity.toUpperCase()}: disk / at some percent\n`);
      return new Promise((resolve) => {
        const child = spawn('sh', [join(dir, 'run-check.sh'), join(dir, 'check.env')], { env: { ...process.env, UPKEEP_STATE_DIR: state, UPKEEP_ALERT_DIR: dir, UPKEEP_TEXTFILE_DIR: join(dir, 'none') }, stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (d) => (stderr += d));
        child.on('close', (status) => resolve({ status, stderr }));
      });
    };
    const alertsLog = () => (existsSync(join(state, 'checks/alerts.log')) ? readFileSync(join(state, 'checks/alerts.log'), 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ').slice(1).join(' ')) : []);
    return { run, state, alertsLog };
  }

  /** The notices received since `from`. */
  const since = (from: number) => notices.slice(from).map((n) => `${n.route} ${n.status}${n.reminder ? ' reminder' : ''} ${n.severity}`);

  it('sends a new notice to every route when a warning becomes critical (without repeatEvery), and not when it only goes back and forth', async () => {
    const { run } = host(['pager', 'mail']);
    const from = notices.length;
    expect((await run('warning')).status).toBe(1);
    expect(since(from)).toEqual(['pager firing warning', 'mail firing warning']);
    expect((await run('warning')).status).toBe(1);
    expect(since(from)).toHaveLength(2);
    // The disk fills up: everyone hears of it.
    expect((await run('critical')).status).toBe(2);
    expect(since(from).slice(2)).toEqual(['pager firing critical', 'mail firing critical']);
    // Back to a warning and up again: nothing they have not heard already.
    await run('warning');
    await run('critical');
    expect(since(from)).toHaveLength(4);
    expect((await run('ok')).status).toBe(0);
    expect(since(from).slice(4)).toEqual(['pager resolved ok', 'mail resolved ok']);
  });

  it('gives a route that missed the firing notice, and later the recovery, each on the next run, and logs each notice once', async () => {
    const { run, alertsLog } = host(['pager', 'mail']);
    const from = notices.length;
    // The mail relay is down when the check fires: the pager hears of it, the run fails as a unit.
    refusing.add('mail');
    const fired = await run('critical');
    expect(fired.status).toBe(5);
    expect(fired.stderr).toContain('run-check: not delivered to route(s) mail; offered again on the next run');
    expect(since(from)).toEqual(['pager firing critical']);
    // The relay is back: the next run gives it the firing notice, and nothing new to the pager.
    refusing.delete('mail');
    expect((await run('critical')).status).toBe(2);
    expect(since(from).slice(1)).toEqual(['mail firing critical']);
    // It is down again when the check recovers; then back.
    refusing.add('mail');
    expect((await run('ok')).status).toBe(5);
    expect(since(from).slice(2)).toEqual(['pager resolved ok']);
    refusing.delete('mail');
    expect((await run('ok')).status).toBe(0);
    expect(since(from).slice(3)).toEqual(['mail resolved ok']);
    expect(await run('ok')).toMatchObject({ status: 0 });
    expect(since(from)).toHaveLength(4);
    // `upkeep status` counts one alert and one recovery.
    expect(alertsLog()).toEqual(['web1-disk firing', 'web1-disk resolved']);
  });

  it('fails the unit (exit 5) while no route takes the alert, and delivers it once one does', async () => {
    const { run } = host(['pager']);
    const from = notices.length;
    refusing.add('pager');
    for (let i = 0; i < 2; i++) {
      const r = await run('critical');
      expect(r.status).toBe(5);
      expect(r.stderr).toContain('not delivered to route(s) pager');
    }
    expect(since(from)).toEqual([]);
    refusing.delete('pager');
    expect((await run('critical')).status).toBe(2);
    expect(since(from)).toEqual(['pager firing critical']);
  });

  it('still reminds a route with repeatEvery while the check keeps failing, as a reminder, not a new notice', async () => {
    const { run } = host(['pager'], 1);
    const from = notices.length;
    await run('critical');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await run('critical');
    expect(since(from)).toEqual(['pager firing critical', 'pager firing reminder critical']);
  });

  it("keeps an Alertmanager alert active until a slow check's next run can re-send it: four re-send periods, not four intervals", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'am.env'), renderEnvFile('route', { UPKEEP_ROUTE_KIND: 'alertmanager', UPKEEP_ALERTMANAGER_URL: `${base}/api/v2/alerts` }));
    const sent = await new Promise<number | null>((resolve) => {
      const env = { UPKEEP_CHECK_ID: 'mail1-delivery', UPKEEP_CHECK_SUBJECT: 'mail1', UPKEEP_CHECK_NAME: 'delivery', UPKEEP_CHECK_KIND: 'mail-delivery', UPKEEP_CHECK_INTERVAL: '60', UPKEEP_CHECK_RESEND_SECONDS: '665', UPKEEP_STATE_DIR: join(dir, 'state') };
      spawn('sh', [join(RUNTIME_SOURCE, 'alert.sh'), join(dir, 'am.env'), 'firing', 'critical', 'probe not delivered within 10m', '2', '0'], { env: { ...process.env, ...env }, stdio: 'ignore' }).on('close', resolve);
    });
    expect(sent).toBe(0);
    const [alert] = alertmanager.at(-1)!;
    expect(alert.labels).toMatchObject({ host: 'mail1', check: 'delivery', severity: 'critical' });
    const lasts = (Date.parse(alert.endsAt) - Date.now()) / 1000;
    expect(lasts).toBeGreaterThan(4 * 665 - 30);
    expect(lasts).toBeLessThanOrEqual(4 * 665);
  });

  it('takes over an incident alerted before delivery was tracked per route: no second firing notice, and the recovery reaches the route', async () => {
    const { run, state } = host(['pager']);
    const from = notices.length;
    await run('ok');
    writeFileSync(join(state, 'checks/web1-disk'), 'failures=3\nsuccesses=0\nalerted=1\nseverity=critical\nsince=1700000000\nfailing_since=1700000000\nalerted_severity=critical\n');
    expect((await run('critical')).status).toBe(2);
    expect(since(from)).toEqual([]);
    expect((await run('ok')).status).toBe(0);
    expect(since(from)).toEqual(['pager resolved ok']);
  });
});
