import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runScriptAsync, tempDir } from './run-script.ts';
import { programsAvailable } from '../programs.ts';

describe.skipIf(!programsAvailable('test/runtime/check-tls-expiry.test.ts', ['openssl']))('check-tls-expiry.sh against a real openssl s_server on 127.0.0.1', () => {
  let server: ChildProcess;
  const port = String(20000 + (process.pid % 20000));

  beforeAll(async () => {
    const dir = tempDir();
    // A certificate valid for 30 days.
    spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '30', '-subj', '/CN=127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    server = spawn('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', join(dir, 'cert.pem'), '-key', join(dir, 'key.pem'), '-quiet'], { stdio: 'ignore' });
    for (let i = 0; i < 50; i++) {
      if (spawnSync('sh', ['-c', `openssl s_client -connect 127.0.0.1:${port} </dev/null >/dev/null 2>&1`]).status === 0) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  afterAll(() => {
    server.kill();
  });

  it('is OK when the certificate outlives the minimum validity', async () => {
    const run = await runScriptAsync('check-tls-expiry.sh', [], { UPKEEP_TLS_TARGET: '127.0.0.1', UPKEEP_TLS_PORT: port, UPKEEP_TLS_MIN_VALIDITY: String(14 * 86400) });
    expect(run.stdout).toMatch(/^OK: the certificate of 127\.0\.0\.1 is valid until /);
    expect(run.status).toBe(0);
  });

  it('is CRITICAL when it expires within the minimum validity', async () => {
    const run = await runScriptAsync('check-tls-expiry.sh', [], { UPKEEP_TLS_TARGET: '127.0.0.1', UPKEEP_TLS_PORT: port, UPKEEP_TLS_MIN_VALIDITY: String(60 * 86400) });
    expect(run.stdout).toContain('CRITICAL: the certificate of 127.0.0.1 expires');
    expect(run.status).toBe(2);
  });

  it('is CRITICAL when nothing answers', async () => {
    expect((await runScriptAsync('check-tls-expiry.sh', [], { UPKEEP_TLS_TARGET: '127.0.0.1', UPKEEP_TLS_PORT: '9', UPKEEP_TLS_MIN_VALIDITY: '1' })).status).toBe(2);
  });

  it('is CRITICAL, saying so, within its timeout when the server accepts and never answers the handshake', { timeout: 20_000 }, async () => {
    const held: Socket[] = [];
    const stalling = createServer((socket) => void held.push(socket));
    await new Promise<void>((resolve) => stalling.listen(0, '127.0.0.1', resolve));
    const stallPort = String((stalling.address() as AddressInfo).port);
    try {
      const started = Date.now();
      const run = await runScriptAsync('check-tls-expiry.sh', [], { UPKEEP_TLS_TARGET: '127.0.0.1', UPKEEP_TLS_PORT: stallPort, UPKEEP_TLS_MIN_VALIDITY: '1', UPKEEP_TLS_TIMEOUT: '2' });
      expect(run.stdout).toBe(`CRITICAL: 127.0.0.1:${stallPort} completed no TLS handshake within 2s\n`);
      expect(run.status).toBe(2);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(held.length).toBeGreaterThan(0);
    } finally {
      held.forEach((s) => s.destroy());
      stalling.close();
    }
  });
});
