import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderEnvFile } from '../../lib/compile/env-file.ts';
import { RUNTIME_SOURCE, runScript, runScriptAsync, tempDir } from './run-script.ts';
import { programsAvailable } from '../programs.ts';

/** Percent used of the file system holding "/", as df reports it. */
function rootUsage(): number {
  const out = spawnSync('df', ['-P', '/'], { encoding: 'utf8' }).stdout.split('\n')[1];
  return Number(out.split(/\s+/)[4].replace('%', ''));
}

describe('check-disk-usage.sh on the real df', () => {
  it('is OK when / is below the limit and names the usage df reports', () => {
    const run = runScript('check-disk-usage.sh', [], { UPKEEP_DISK_MOUNTS: '/', UPKEEP_DISK_MAX_PERCENT: '100' });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`/ ${rootUsage()}%`);
  });

  it('is CRITICAL when / is fuller than the limit', () => {
    const limit = Math.max(rootUsage() - 1, 0);
    const run = runScript('check-disk-usage.sh', [], { UPKEEP_DISK_MOUNTS: '/ /tmp', UPKEEP_DISK_MAX_PERCENT: String(limit) });
    expect(run.status).toBe(2);
    expect(run.stdout).toMatch(/^CRITICAL: \/ \d+% /);
  });

  it('is UNKNOWN for a mount point that does not exist', () => {
    expect(runScript('check-disk-usage.sh', [], { UPKEEP_DISK_MOUNTS: '/no/such/mount', UPKEEP_DISK_MAX_PERCENT: '90' }).status).toBe(3);
  });
});

describe('check-failed-units.sh with a FAKE systemctl (no systemd runs as PID 1 here)', () => {
  function fakeSystemctl(output: string): { path: string; argsFile: string } {
    const bin = tempDir();
    const argsFile = join(bin, 'args');
    writeFileSync(join(bin, 'systemctl'), `#!/bin/sh\necho "$*" > '${argsFile}'\nprintf '%s' '${output}'\n`);
    chmodSync(join(bin, 'systemctl'), 0o755);
    return { path: `${bin}:${process.env.PATH}`, argsFile };
  }

  it('is CRITICAL and names the failed units, asking systemctl for a plain list', () => {
    const fake = fakeSystemctl('nginx.service loaded failed failed A high performance web server\nupkeep-backup.service loaded failed failed backup\n');
    const run = runScript('check-failed-units.sh', [], { PATH: fake.path });
    expect(run.status).toBe(2);
    expect(run.stdout).toBe('CRITICAL: failed units: nginx.service upkeep-backup.service \n');
    expect(readFileSync(fake.argsFile, 'utf8').trim()).toBe('--failed --no-legend --plain');
  });

  it('is OK when no unit failed', () => {
    const run = runScript('check-failed-units.sh', [], { PATH: fakeSystemctl('').path });
    expect(run.status).toBe(0);
  });
});

describe('check-cpu-temperature.sh on a FAKE sysfs tree (no sensors in this machine)', () => {
  function sysfs(hwmon: number, thermal: number): string {
    const root = tempDir();
    mkdirSync(join(root, 'class/hwmon/hwmon0'), { recursive: true });
    mkdirSync(join(root, 'class/thermal/thermal_zone0'), { recursive: true });
    writeFileSync(join(root, 'class/hwmon/hwmon0/temp1_input'), `${hwmon}\n`);
    writeFileSync(join(root, 'class/thermal/thermal_zone0/temp'), `${thermal}\n`);
    return root;
  }

  it('reports the hottest sensor and is CRITICAL at the limit', () => {
    const run = runScript('check-cpu-temperature.sh', [], { UPKEEP_SYSFS: sysfs(45000, 91500), UPKEEP_CPU_MAX_CELSIUS: '85' });
    expect(run.status).toBe(2);
    expect(run.stdout).toContain('91°C');
  });

  it('is OK well below the limit and UNKNOWN without sensors', () => {
    expect(runScript('check-cpu-temperature.sh', [], { UPKEEP_SYSFS: sysfs(45000, 52000), UPKEEP_CPU_MAX_CELSIUS: '85' }).status).toBe(0);
    expect(runScript('check-cpu-temperature.sh', [], { UPKEEP_SYSFS: tempDir(), UPKEEP_CPU_MAX_CELSIUS: '85' }).status).toBe(3);
  });
});

describe('check-backup-freshness.sh reads the status backup.sh writes', () => {
  const state = (line: string) => {
    const dir = tempDir();
    mkdirSync(join(dir, 'backup'));
    writeFileSync(join(dir, 'backup/backup.status'), `${line}\n`);
    return dir;
  };
  const now = () => Math.floor(Date.now() / 1000);

  it('is OK for a backup an hour old, CRITICAL for one two days old, WARNING after exit 3', () => {
    expect(runScript('check-backup-freshness.sh', [], { UPKEEP_STATE_DIR: state(`${now() - 3600} ok snapshot saved`), UPKEEP_BACKUP_MAX_AGE: '93600' }).status).toBe(0);
    expect(runScript('check-backup-freshness.sh', [], { UPKEEP_STATE_DIR: state(`${now() - 172800} ok snapshot saved`), UPKEEP_BACKUP_MAX_AGE: '93600' }).status).toBe(2);
    expect(runScript('check-backup-freshness.sh', [], { UPKEEP_STATE_DIR: state(`${now() - 60} warning some files`), UPKEEP_BACKUP_MAX_AGE: '93600' }).status).toBe(1);
  });

  it('is OK on a new host that awaits its first scheduled backup, and CRITICAL once that is overdue', () => {
    const dir = tempDir();
    const first = runScript('check-backup-freshness.sh', [], { UPKEEP_STATE_DIR: dir, UPKEEP_BACKUP_MAX_AGE: '93600' });
    expect(first.stdout).toMatch(/^OK: no backup yet; the first scheduled one is awaited \(due within 26h\)/);
    expect(first.status).toBe(0);
    // Rounded up, not down: a second later 25 h 59 min are left, still "within 26h" (the test
    // once failed when a second passed between the script's two readings of the clock).
    writeFileSync(join(dir, 'checks/backup-awaited-since'), `${now() - 1}\n`);
    expect(runScript('check-backup-freshness.sh', [], { UPKEEP_STATE_DIR: dir, UPKEEP_BACKUP_MAX_AGE: '93600' }).stdout).toMatch(/\(due within 26h\)/);
    writeFileSync(join(dir, 'checks/backup-awaited-since'), `${now() - 3600}\n`);
    expect(runScript('check-backup-freshness.sh', [], { UPKEEP_STATE_DIR: dir, UPKEEP_BACKUP_MAX_AGE: '93600' }).stdout).toMatch(/\(due within 25h\)/);
    // The host has waited longer than the maximum age since the check first found no backup.
    writeFileSync(join(dir, 'checks/backup-awaited-since'), `${now() - 93_700}\n`);
    const overdue = runScript('check-backup-freshness.sh', [], { UPKEEP_STATE_DIR: dir, UPKEEP_BACKUP_MAX_AGE: '93600' });
    expect(overdue.stdout).toMatch(/^CRITICAL: no backup has run on this host in 26h/);
    expect(overdue.status).toBe(2);
  });
});

interface Received {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

describe.skipIf(!programsAvailable('test/runtime/checks.test.ts', ['curl']))('HTTP checks and alerts against a local server on 127.0.0.1', () => {
  let server: Server;
  let base = '';
  const received: Received[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        received.push({ path: req.url ?? '', headers: req.headers, body });
        if (req.url === '/health') res.writeHead(200).end('status: all "ok"\n');
        else if (req.url === '/hook') res.writeHead(202).end();
        else res.writeHead(503).end('down\n');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('check-http.sh is OK for the expected status and a matching body', async () => {
    const run = await runScriptAsync('check-http.sh', [], { UPKEEP_HTTP_URL: `${base}/health`, UPKEEP_HTTP_STATUS: '200', UPKEEP_HTTP_BODY_MATCHES: 'all "ok"$' });
    expect(run.stdout).toBe(`OK: ${base}/health answered 200\n`);
    expect(run.status).toBe(0);
  });

  it('check-http.sh is CRITICAL for another status, a body that does not match, or no server', async () => {
    expect((await runScriptAsync('check-http.sh', [], { UPKEEP_HTTP_URL: `${base}/down`, UPKEEP_HTTP_STATUS: '200' })).stdout).toContain('answered 503, expected 200');
    expect((await runScriptAsync('check-http.sh', [], { UPKEEP_HTTP_URL: `${base}/health`, UPKEEP_HTTP_STATUS: '200', UPKEEP_HTTP_BODY_MATCHES: '^healthy' })).status).toBe(2);
    expect((await runScriptAsync('check-http.sh', [], { UPKEEP_HTTP_URL: 'http://127.0.0.1:9/', UPKEEP_HTTP_STATUS: '200' })).status).toBe(2);
  });

  it('run-check.sh alerts once after the failure threshold and sends a recovery after the recovery threshold', async () => {
    const dir = tempDir({ 'ops.token': 's3cr3t-token\n' });
    writeFileSync(join(dir, 'ops.env'), renderEnvFile('route', { UPKEEP_ROUTE_KIND: 'webhook', UPKEEP_WEBHOOK: `${base}/hook`, UPKEEP_TOKEN_FILE: join(dir, 'ops.token') }));
    const check = (url: string) =>
      renderEnvFile('check', {
        UPKEEP_CHECK_ID: 'web1-site',
        UPKEEP_CHECK_KIND: 'http',
        UPKEEP_CHECK_SUBJECT: 'web1',
        UPKEEP_CHECK_NAME: 'site',
        UPKEEP_FAILURE_THRESHOLD: 2,
        UPKEEP_RECOVERY_THRESHOLD: 2,
        UPKEEP_ROUTES: 'ops',
        UPKEEP_HTTP_URL: url,
        UPKEEP_HTTP_STATUS: 200,
      });
    writeFileSync(join(dir, 'failing.env'), check(`${base}/down`));
    writeFileSync(join(dir, 'healthy.env'), check(`${base}/health`));
    const env = { UPKEEP_STATE_DIR: join(dir, 'state'), UPKEEP_ALERT_DIR: dir };
    const hooks = () => received.filter((r) => r.path === '/hook');
    const before = hooks().length;

    const first = await runScriptAsync('run-check.sh', [join(dir, 'failing.env')], env);
    // The severity is the exit status, for the health gate (the unit counts 1-3 as success).
    expect(first.status).toBe(2);
    expect(first.stdout).toContain('web1-site: critical: CRITICAL');
    expect(hooks().length).toBe(before);

    await runScriptAsync('run-check.sh', [join(dir, 'failing.env')], env);
    expect(hooks().length).toBe(before + 1);
    const alert = hooks()[before];
    expect(alert.headers.authorization).toBe('Bearer s3cr3t-token');
    expect(alert.headers['content-type']).toBe('application/json');
    expect(JSON.parse(alert.body)).toMatchObject({ status: 'firing', severity: 'critical', host: 'web1', check: 'site', kind: 'http', failures: 2, successes: 0 });
    expect(JSON.parse(alert.body).message).toContain('answered 503');

    await runScriptAsync('run-check.sh', [join(dir, 'failing.env')], env);
    expect(hooks().length).toBe(before + 1);

    await runScriptAsync('run-check.sh', [join(dir, 'healthy.env')], env);
    expect(hooks().length).toBe(before + 1);
    await runScriptAsync('run-check.sh', [join(dir, 'healthy.env')], env);
    expect(hooks().length).toBe(before + 2);
    expect(JSON.parse(hooks()[before + 1].body)).toMatchObject({ status: 'resolved', severity: 'ok', host: 'web1', successes: 2 });
  });

  it('alert.sh keeps the token off the command line and escapes the message as JSON', async () => {
    const dir = tempDir({ token: 'tok-123' });
    writeFileSync(join(dir, 'r.env'), renderEnvFile('route', { UPKEEP_ROUTE_KIND: 'webhook', UPKEEP_WEBHOOK: `${base}/hook`, UPKEEP_TOKEN_FILE: join(dir, 'token') }));
    // A wrapper named curl that records its arguments before running the real curl.
    writeFileSync(join(dir, 'curl'), `#!/bin/sh\nprintf '%s\\n' "$@" > '${dir}/argv'\nexec /usr/bin/curl "$@"\n`);
    chmodSync(join(dir, 'curl'), 0o755);
    const count = received.length;
    const run = await runScriptAsync('alert.sh', [join(dir, 'r.env'), 'firing', 'warning', 'say "hi" \\ $(id)\tnow', '3', '0'], { UPKEEP_CHECK_ID: 'web1-site', UPKEEP_CHECK_SUBJECT: 'web1', UPKEEP_STATE_DIR: join(dir, 'state'), PATH: `${dir}:${process.env.PATH}` });
    expect(run.status).toBe(0);
    expect(received[count].headers.authorization).toBe('Bearer tok-123');
    expect(readFileSync(join(dir, 'argv'), 'utf8')).not.toContain('tok-123');
    expect(JSON.parse(received[count].body).message).toBe('say "hi" \\ $(id)now');
  });
});

describe('check-monitor-heartbeat.sh asking a real serve-liveness.sh (a TCP server starting it per connection, as systemd\'s Accept=yes socket does)', () => {
  let server: NetServer;
  let port: number;
  /** The monitor's liveness and config directories, which serve-liveness.sh reads. */
  const monitorLiveness = tempDir();
  const monitorConfig = tempDir();
  const now = () => Math.floor(Date.now() / 1000);

  /** What the monitor recorded: its checks last all ran `secondsAgo` ago, or nothing yet (null). */
  function recorded(secondsAgo: number | null): void {
    rmSync(join(monitorLiveness, 'last'), { force: true });
    if (secondsAgo === null) return;
    writeFileSync(join(monitorLiveness, 'last'), `${now() - secondsAgo}\n`);
  }

  /** Its heartbeat settings, written `secondsAgo` ago (a rollout writes them when they change). */
  function setUp(secondsAgo: number): void {
    const file = join(monitorConfig, 'heartbeat.env');
    writeFileSync(file, "UPKEEP_HEARTBEAT_CHECKS='mon1-disk:80'\n");
    utimesSync(file, now() - secondsAgo, now() - secondsAgo);
  }

  beforeAll(async () => {
    server = createNetServer((socket) => {
      const child = spawn('sh', [join(RUNTIME_SOURCE, 'serve-liveness.sh')], { env: { ...process.env, UPKEEP_LIVENESS_DIR: monitorLiveness, UPKEEP_CONFIG_DIR: monitorConfig }, stdio: ['pipe', 'pipe', 'inherit'] });
      socket.pipe(child.stdin);
      child.stdout.pipe(socket);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  // The script runs asynchronously: the server answers in this process.
  const check = async (env: Record<string, string>) => {
    const run = await runScriptAsync('check-monitor-heartbeat.sh', [], { UPKEEP_HEARTBEAT_MONITOR: 'mon1', UPKEEP_HEARTBEAT_MAX_AGE: '300', ...env });
    return [run.status, run.stdout] as const;
  };
  const atUrl = () => ({ UPKEEP_HEARTBEAT_URL: `http://127.0.0.1:${port}/` });

  it('is OK while the monitor ran its checks recently and CRITICAL once that is older than the maximum age', async () => {
    setUp(3600);
    recorded(10);
    expect(await check(atUrl())).toEqual([0, expect.stringMatching(/^OK: monitor mon1's checks all ran 1\ds ago\n$/)]);
    recorded(900);
    expect(await check(atUrl())).toEqual([2, expect.stringMatching(/^CRITICAL: monitor mon1 silent: its checks last all ran 9\d\ds ago \(more than 300s\)\n$/)]);
  });

  it('gives a monitor that has recorded nothing yet the maximum age from when its heartbeat was set up (a first rollout), and not longer', async () => {
    recorded(null);
    setUp(20);
    expect(await check(atUrl())).toEqual([0, expect.stringMatching(/^OK: monitor mon1 has recorded no heartbeat yet: set up 2\ds ago, its checks have 300s to all run\n$/)]);
    setUp(900);
    expect(await check(atUrl())).toEqual([2, expect.stringMatching(/^CRITICAL: monitor mon1 silent: its checks have not all run since its heartbeat was set up 9\d\ds ago \(more than 300s\)\n$/)]);
    // Once it records a time, that time counts, however long ago it was set up.
    recorded(10);
    expect(await check(atUrl())).toEqual([0, expect.stringMatching(/^OK: monitor mon1's checks all ran 1\ds ago\n$/)]);
  });

  it('is CRITICAL when nothing answers at the monitor\'s address', async () => {
    expect(await check({ UPKEEP_HEARTBEAT_URL: `http://127.0.0.9:${port}/` })).toEqual([2, expect.stringContaining(`CRITICAL: monitor mon1 does not answer at http://127.0.0.9:${port}/`)]);
  });

  it('asks a provisioned monitor at the address bin/apply pinned, and is UNKNOWN, naming the pin, before there is one', async () => {
    setUp(3600);
    recorded(10);
    const state = tempDir();
    const pinned = { UPKEEP_HEARTBEAT_PORT: String(port), UPKEEP_STATE_DIR: state };
    expect(await check(pinned)).toEqual([3, `UNKNOWN: monitor mon1 is provisioned, and bin/apply has not pinned its address on this host (${state}/peers/addresses)\n`]);
    mkdirSync(join(state, 'peers'));
    // Another host's address first: the monitor's own line is the one read.
    writeFileSync(join(state, 'peers', 'addresses'), '# Managed by upkeep (bin/apply).\nmon10 192.0.2.1\nmon1 127.0.0.1\n');
    expect(await check(pinned)).toEqual([0, expect.stringMatching(/^OK: monitor mon1's checks all ran \d+s ago\n$/)]);
    // Pinned where nothing answers: the monitor does not answer, which is CRITICAL.
    writeFileSync(join(state, 'peers', 'addresses'), 'mon1 127.0.0.9\n');
    expect(await check(pinned)).toEqual([2, expect.stringContaining(`CRITICAL: monitor mon1 does not answer at http://127.0.0.9:${port}/`)]);
  });
});
