// The ssh transport against a real host: the system ssh client, a pinned host key, one
// multiplexed connection, the script never parsed by the remote login shell.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshTransport } from '../../lib/hosts/ssh-transport.ts';
import { TransportError } from '../../lib/hosts/transport.ts';
import { FLEET_HOOK_TIMEOUT_MS, FLEET_TEST_TIMEOUT_MS, fleetAvailable, startFleet, type TestFleet, type TestHost } from '../fleet/testbed.ts';
import { sshTo } from './host-fixtures.ts';

describe.skipIf(!fleetAvailable('ssh transport tests on the real fleet'))('the ssh transport', () => {
  let fleet: TestFleet;
  let host: TestHost;
  let t: SshTransport;
  let scratch: string;
  beforeAll(async () => {
    fleet = await startFleet(['wire1']);
    host = fleet.host('wire1');
    t = sshTo(fleet, host);
    scratch = mkdtempSync(join(tmpdir(), 'upkeep-ssh-test-'));
  }, FLEET_HOOK_TIMEOUT_MS);
  afterAll(async () => {
    await t?.close();
    await fleet?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }, FLEET_HOOK_TIMEOUT_MS);

  it('returns the script’s stdout, stderr and exit status, with the input on its stdin', async () => {
    const result = await t.run('tr a-z A-Z; echo oops >&2; exit 7', 'hello\n');
    expect(result).toEqual({ stdout: 'HELLO\n', stderr: 'oops\n', exitCode: 7 });
  }, FLEET_TEST_TIMEOUT_MS);

  it('hands the script to sh untouched: quotes, dollars and newlines reach it verbatim', async () => {
    const script = `printf '%s\\n' "it's \\$HOME" 'a "b" \\\\ c'\necho "$0 line two"`;
    const result = await t.run(script);
    expect(result.stdout).toBe(`it's $HOME\na "b" \\\\ c\nsh line two\n`);
  }, FLEET_TEST_TIMEOUT_MS);

  it('counts one round trip per run and reuses one connection for all of them', async () => {
    const fresh = sshTo(fleet, host);
    try {
      const ports = new Set<string>();
      for (let i = 0; i < 3; i++) ports.add((await fresh.run('echo "$SSH_CONNECTION"')).stdout.split(' ')[1] ?? '');
      expect(fresh.roundTrips).toBe(3);
      expect(ports.size).toBe(1);
    } finally {
      await fresh.close();
    }
  }, FLEET_TEST_TIMEOUT_MS);

  it('keeps working after its idle master connection has gone', async () => {
    const brief = new SshTransport({ host: 'wire1', address: host.address, knownHostsFile: fleet.knownHostsFile, identityFile: fleet.identityFile, controlPersistSeconds: 1 });
    try {
      expect((await brief.run('echo one')).stdout).toBe('one\n');
      await new Promise((r) => setTimeout(r, 3_000));
      const started = Date.now();
      expect((await brief.run('echo two')).stdout).toBe('two\n');
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      await brief.close();
    }
  }, FLEET_TEST_TIMEOUT_MS);

  it('refuses a host whose key is not the pinned one, naming the host and exit 255', async () => {
    const key = join(scratch, 'other');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const knownHosts = join(scratch, 'known_hosts');
    writeFileSync(knownHosts, `${host.address} ${readFileSync(`${key}.pub`, 'utf8').split(' ').slice(0, 2).join(' ')}\n`);
    const impostor = new SshTransport({ host: 'wire1', address: host.address, knownHostsFile: knownHosts, identityFile: fleet.identityFile });
    try {
      const error = await impostor.run('echo should not run').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TransportError);
      expect((error as TransportError).exitCode).toBe(255);
      expect((error as Error).message).toMatch(/^wire1: ssh failed.*exit 255/);
      expect((error as Error).message).toMatch(/host key/i);
    } finally {
      await impostor.close();
    }
  }, FLEET_TEST_TIMEOUT_MS);

  it('reports a host nobody listens on as unreachable', async () => {
    const nowhere = new SshTransport({ host: 'gone1', address: '127.0.1.254', port: 2, knownHostsFile: fleet.knownHostsFile, identityFile: fleet.identityFile, connectTimeoutSeconds: 3 });
    try {
      const error = await nowhere.run('true').catch((e: unknown) => e);
      expect((error as TransportError).exitCode).toBe(255);
      expect((error as Error).message).toMatch(/^gone1: .*Connection refused/s);
    } finally {
      await nowhere.close();
    }
  }, FLEET_TEST_TIMEOUT_MS);

  it('kills a session that runs past its timeout', async () => {
    const started = Date.now();
    const error = await t.run('sleep 30', undefined, { timeoutMs: 1_500 }).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/no answer within 1500 ms/);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect((await t.run('echo still usable')).stdout).toBe('still usable\n');
  }, FLEET_TEST_TIMEOUT_MS);

  it('refuses an address that is not a plain host name or IP', () => {
    expect(() => new SshTransport({ host: 'x', address: '-oProxyCommand=evil', knownHostsFile: fleet.knownHostsFile })).toThrow(/not an ssh address/);
  });
});
