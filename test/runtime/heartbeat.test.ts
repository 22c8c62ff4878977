// The monitor's heartbeat as a host runs it: heartbeat.sh as root records the time its checks last
// all ran, and serve-liveness.sh answers the other hosts as systemd runs it, as an unprivileged
// user (DynamicUser=), on a host whose state directory the agent made (0700 root: it holds keys and
// secrets). The liveness server must read that time, and nothing of the state directory.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderEnvFile } from '../../lib/compile/env-file.ts';
import { RUNTIME_SOURCE, tempDir } from './run-script.ts';
import { programsAvailable } from '../programs.ts';

const asRoot = process.getuid?.() === 0;
if (!asRoot) console.warn('!!! SKIPPING test/runtime/heartbeat.test.ts: it needs root, to run the liveness server as the unprivileged user nobody');

/** Runs `argv` as the user nobody, without supplementary groups, as a DynamicUser service runs. */
function asNobody(argv: readonly string[], env: Record<string, string>, input = ''): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', ...argv], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env }, input, timeout: 30_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** Runs a runtime program as root with umask 077, as the agent's shell has it; in the background, for the server here. */
function withTightUmask(script: string, args: readonly string[], env: Record<string, string>): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', 'umask 077 && exec sh "$@"', 'sh', join(RUNTIME_SOURCE, script), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status) => resolve({ status, stderr }));
  });
}

describe.skipIf(!asRoot || !programsAvailable('test/runtime/heartbeat.test.ts', ['curl', 'setpriv']))('the monitor heartbeat on a host whose state directory the agent made', () => {
  let server: Server;
  const pings: string[] = [];
  /** A root as a host has it: /var/lib/upkeep made as the agent makes it (umask 077), nothing else. */
  const root = tempDir();
  const state = join(root, 'var/lib/upkeep');
  const liveness = join(root, 'var/lib/upkeep-liveness');
  const config = join(root, 'etc/upkeep');
  const env = { UPKEEP_STATE_DIR: state, UPKEEP_LIVENESS_DIR: liveness, UPKEEP_CONFIG_DIR: config };

  beforeAll(async () => {
    server = createServer((req, res) => {
      pings.push(req.url ?? '');
      req.resume();
      req.on('end', () => res.writeHead(200).end('OK\n'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    chmodSync(root, 0o755);
    mkdirSync(join(root, 'var/lib'), { recursive: true, mode: 0o755 });
    // upkeep-agent.sh: `umask 077`, then `mkdir -p "$STATE"`.
    expect(spawnSync('sh', ['-c', 'umask 077 && mkdir -p "$1"', 'sh', state]).status).toBe(0);
    mkdirSync(join(state, 'checks'), { mode: 0o755 });
    writeFileSync(join(state, 'checks', 'mon1-disk'), 'failures=0\nseverity=ok\n', { mode: 0o644 });
    writeFileSync(join(state, 'heartbeat.url'), `http://127.0.0.1:${(server.address() as AddressInfo).port}/ping/key\n`, { mode: 0o600 });
    mkdirSync(config, { recursive: true, mode: 0o755 });
    writeFileSync(join(config, 'heartbeat.env'), renderEnvFile('heartbeat', { UPKEEP_HEARTBEAT_URL_FILE: join(state, 'heartbeat.url'), UPKEEP_HEARTBEAT_CHECKS: 'mon1-disk:180' }), { mode: 0o644 });
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('serves the time heartbeat.sh recorded to the unprivileged liveness server, which cannot read the state directory', async () => {
    // The heartbeat runs as root, here with the agent's umask 077: the modes must not depend on it.
    const beat = await withTightUmask('heartbeat.sh', [join(config, 'heartbeat.env')], env);
    expect(beat.stderr).toBe('');
    expect(beat.status).toBe(0);
    expect(pings).toEqual(['/ping/key']);
    const recordedAt = Math.floor(Date.now() / 1000);

    const answer = asNobody(['/bin/sh', join(RUNTIME_SOURCE, 'serve-liveness.sh')], env, 'GET / HTTP/1.0\r\nHost: mon1\r\n\r\n');
    expect(answer.stderr).toBe('');
    expect(answer.stdout).toMatch(/^HTTP\/1\.0 200 OK\r\nContent-Type: text\/plain\r\n\r\n\d+\n$/);
    const served = Number(/(\d+)\n$/.exec(answer.stdout)![1]);
    expect(served).toBeGreaterThan(recordedAt - 60);
    expect(served).toBeLessThanOrEqual(recordedAt);

    // The state directory stays the agent's: 0700, nothing in it readable to the server's user.
    expect(statSync(state).mode & 0o777).toBe(0o700);
    expect(asNobody(['cat', join(state, 'heartbeat.url')], env).status).not.toBe(0);
    expect(asNobody(['cat', join(state, 'checks', 'mon1-disk')], env).status).not.toBe(0);
    expect(statSync(liveness).mode & 0o777).toBe(0o755);
    expect(statSync(join(liveness, 'last')).mode & 0o777).toBe(0o644);
  });
});
