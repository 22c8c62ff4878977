// reboot-ready.sh, what a reboot set member tells its peers (through serve-reboot-ready.sh) and its
// own reboot-required check: ready once every one of its checks has run since the boot and passed
// as the health gate counts it. The boot is this machine's PID 1's start, read here the way the
// program reads it, and the check state files are dated around it.

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rebootSetEnv } from '../../lib/compile/reboot-set.ts';
import { sundayWindow } from '../fixtures/resolved-fleet.ts';
import { runScript, tempDir } from './run-script.ts';

/** PID 1's start in epoch seconds: btime plus its start time in clock ticks (proc(5)). */
function bootTime(): number {
  const fields = readFileSync('/proc/1/stat', 'utf8').replace(/^.*\) /s, '').split(' ');
  const btime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))![1]);
  const hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  return btime + Math.floor(Number(fields[19]) / hz);
}

/** A member whose checks are `checks` (id -> [severity, mtime] or absent), ready within `within` seconds of its boot. */
function member(checks: Record<string, [string, number] | undefined>, within: number) {
  const dir = tempDir();
  mkdirSync(join(dir, 'etc'));
  mkdirSync(join(dir, 'state/checks'), { recursive: true });
  const env = rebootSetEnv(sundayWindow, { set: 'dns', host: 'ns1', index: 0, count: 2, peers: [{ host: 'ns2', address: '192.0.2.53', port: 53 }] }, { checks: Object.keys(checks), withinSeconds: within });
  writeFileSync(join(dir, 'etc/reboot-set.env'), env);
  for (const [id, state] of Object.entries(checks)) {
    if (!state) continue;
    const file = join(dir, 'state/checks', id);
    writeFileSync(file, `failures=0\nsuccesses=1\nalerted=0\nseverity=${state[0]}\nsince=1\nfailing_since=0\nalerted_severity=\n`);
    utimesSync(file, state[1], state[1]);
  }
  const env2 = { UPKEEP_CONFIG_DIR: join(dir, 'etc'), UPKEEP_STATE_DIR: join(dir, 'state') };
  return {
    dir,
    ready: () => runScript('reboot-ready.sh', [], env2),
    serve: (path = '/', credentials?: string) =>
      runScript('serve-reboot-ready.sh', [], { ...env2, ...(credentials && { CREDENTIALS_DIRECTORY: credentials }) }, `GET ${path} HTTP/1.1\r\nHost: ns1:9470\r\nUser-Agent: curl\r\n\r\n`),
    check: () => runScript('check-reboot-required.sh', [], { ...env2, UPKEEP_PACKAGE_FAMILY: 'apt', UPKEEP_REBOOT_MAX_PENDING: '691200' }),
  };
}

describe('reboot-ready.sh: is this reboot set member ready for another to reboot?', () => {
  const boot = bootTime();
  const now = Math.floor(Date.now() / 1000);
  const LONG = 10 * 365 * 86_400;

  it('is ready when every check has run since the boot and passed (OK or WARNING)', () => {
    const r = member({ 'ns1-dns': ['ok', now], 'ns1-disk-usage': ['warning', boot] }, LONG).ready();
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ready: every check of this host passed since it booted \d+ s ago\n$/);
    expect(member({}, LONG).ready().status).toBe(0);
  });

  it('is not ready while a check has not run since the boot, or its last run was CRITICAL or UNKNOWN, and names each', () => {
    const r = member({ 'ns1-dns': ['ok', boot - 1], 'ns1-failed-units': ['critical', now], 'ns1-smtp': ['unknown', now], 'ns1-http': undefined, 'ns1-disk-usage': ['ok', now] }, LONG).ready();
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^not ready \d+ s after booting: ns1-dns \(not run since the boot\) ns1-failed-units \(critical\) ns1-smtp \(unknown\) ns1-http \(not run since the boot\)\n$/);
  });

  it('says "not ready" with exit 2 once the boot is longer ago than the checks need to pass', () => {
    expect(now - boot).toBeGreaterThan(1);
    const r = member({ 'ns1-dns': ['critical', now] }, now - boot - 1).ready();
    expect(r.status).toBe(2);
    expect(member({ 'ns1-dns': ['critical', now] }, now - boot + 60).ready().status).toBe(1);
    expect(member({ 'ns1-dns': ['ok', now] }, 0).ready().status).toBe(0);
  });

  it('is served over HTTP: 200 when ready, 503 with the reason otherwise', () => {
    const ready = member({ 'ns1-dns': ['ok', now] }, LONG).serve();
    expect(ready.status).toBe(0);
    expect(ready.stdout).toMatch(/^HTTP\/1\.0 200 OK\r\nContent-Type: text\/plain\r\n\r\nready: every check/);
    const held = member({ 'ns1-dns': ['critical', now] }, LONG).serve();
    expect(held.stdout).toMatch(/^HTTP\/1\.0 503 Service Unavailable\r\nContent-Type: text\/plain\r\n\r\nnot ready \d+ s after booting: ns1-dns \(critical\)\n$/);
  });

  it("signs its answer over the asker's nonce with the host key it gets as a credential, and only then", () => {
    // The credential as systemd's LoadCredential gives it: a copy of the host key the service may read.
    const credentials = tempDir();
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(credentials, 'host-key')]);
    const signers = join(credentials, 'signers');
    writeFileSync(signers, `ns1 namespaces="upkeep-reboot-ready" ${readFileSync(join(credentials, 'host-key.pub'), 'utf8').split(' ').slice(0, 2).join(' ')}\n`);
    const nonce = 'a1'.repeat(16);
    const verify = (answer: string, status: number, asked = nonce) => {
      const signature = join(credentials, 'signature');
      writeFileSync(signature, /-----BEGIN SSH SIGNATURE-----\n[\s\S]*-----END SSH SIGNATURE-----\n/.exec(answer)?.[0] ?? '');
      const lines = `upkeep reboot readiness\nset dns\nmember ns1\nnonce ${asked}\nstatus ${status}\n`;
      try {
        execFileSync('ssh-keygen', ['-Y', 'verify', '-f', signers, '-I', 'ns1', '-n', 'upkeep-reboot-ready', '-s', signature], { input: lines, stdio: ['pipe', 'ignore', 'ignore'] });
        return true;
      } catch {
        return false;
      }
    };
    const ready = member({ 'ns1-dns': ['ok', now] }, LONG);
    const signed = ready.serve(`/?nonce=${nonce}`, credentials);
    expect(signed.stdout).toMatch(/^HTTP\/1\.0 200 OK\r\nContent-Type: text\/plain\r\n\r\nready: every check[^\n]*\n-----BEGIN SSH SIGNATURE-----\n/);
    expect(verify(signed.stdout, 200)).toBe(true);
    // Over that nonce and that status only.
    expect(verify(signed.stdout, 200, 'b2'.repeat(16))).toBe(false);
    expect(verify(signed.stdout, 503)).toBe(false);
    const held = member({ 'ns1-dns': ['critical', now] }, LONG).serve(`/?nonce=${nonce}`, credentials);
    expect(held.stdout).toMatch(/^HTTP\/1\.0 503 /);
    expect(verify(held.stdout, 503)).toBe(true);
    // No nonce, a malformed one, or no key: an answer as before, unsigned.
    for (const [path, key] of [['/', credentials], ['/?nonce=xyz', credentials], [`/?nonce=${nonce}`, undefined]] as const) {
      expect(ready.serve(path, key).stdout).not.toContain('SSH SIGNATURE');
    }
  });

  it('makes the reboot-required check CRITICAL, naming the set, only once the member stays not ready past the bound', () => {
    const late = member({ 'ns1-dns': ['critical', now] }, now - boot - 1).check();
    expect(late.status).toBe(2);
    expect(late.stdout).toMatch(/^CRITICAL: not ready \d+ s after booting: ns1-dns \(critical\); the other members of reboot set dns hold their reboots until this host is ready\n$/);
    for (const m of [member({ 'ns1-dns': ['critical', now] }, LONG), member({ 'ns1-dns': ['ok', now] }, 0)]) {
      const r = m.check();
      expect(r.status, r.stdout).toBe(0);
      expect(r.stdout).toMatch(/^OK: /);
    }
  });

  it('cannot tell (exit 3) without its reboot-set.env', () => {
    const dir = tempDir();
    const r = runScript('reboot-ready.sh', [], { UPKEEP_CONFIG_DIR: dir, UPKEEP_STATE_DIR: dir });
    expect(r.status).toBe(3);
    expect(r.stdout).toBe(`reboot-ready: cannot read ${dir}/reboot-set.env\n`);
  });

  it('leaves the reboot-required check of a host in no reboot set as it was', () => {
    const dir = tempDir();
    const r = runScript('check-reboot-required.sh', [], { UPKEEP_CONFIG_DIR: dir, UPKEEP_STATE_DIR: dir, UPKEEP_PACKAGE_FAMILY: 'apt', UPKEEP_REBOOT_MAX_PENDING: '691200' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^OK: /);
  });
});
