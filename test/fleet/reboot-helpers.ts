// Shared steps of the reboot fleet tests: a window start relative to now, and waiting for a test
// host to come back from its reboots.

import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import type { TestHost } from './testbed.ts';

export const EVERY_DAY = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

/** "HH:MM" on the wall clock of `timeZone`, `minutes` from now. */
export function clock(minutes: number, timeZone = 'UTC'): string {
  return new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(Date.now() + minutes * 60_000));
}

/** The host's boot id (systemd-nspawn gives every boot of a container its own). */
export async function bootId(host: TestHost): Promise<string> {
  return (await host.ssh('cat /proc/sys/kernel/random/boot_id', { timeoutMs: 10_000 })).stdout.trim();
}

/** What upkeep-reboot.service said in the host's current boot. */
export async function rebootJournal(host: TestHost): Promise<string> {
  return (await host.ssh('journalctl -b -u upkeep-reboot.service -o cat --no-pager')).stdout;
}

/**
 * Waits until `host` rebooted `count` times in all and is back (a new boot id, booted, `service`
 * active); returns its new boot id.
 */
export async function comesBack(host: TestHost, before: string, count: number, service: string): Promise<string> {
  const deadline = Date.now() + 120_000;
  let now = before;
  while (Date.now() < deadline && (host.reboots < count || now === before || now === '')) {
    await sleep(2_000);
    now = await bootId(host).catch(() => '');
  }
  expect(host.reboots).toBe(count);
  expect(now).not.toBe(before);
  const up = await host.ssh(`systemctl is-system-running --wait >/dev/null; systemctl is-active ${service}`, { timeoutMs: 180_000 });
  expect(up.stdout.trim()).toBe('active');
  return now;
}

/**
 * An impostor at `host`'s address and readiness port: its readiness socket stopped, and in its
 * place a plain HTTP server that always says ready and signs nothing. Returns what puts the real
 * socket back.
 */
export async function impostorReadiness(host: TestHost, port: number): Promise<() => Promise<void>> {
  const impostor = `import http.server
class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ready: every check passed\\n")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("${host.address}", ${port}), Ready).serve_forever()
`;
  expect((await host.ssh('cat > /root/impostor.py', { input: impostor })).exitCode).toBe(0);
  const started = await host.ssh(
    `systemctl stop upkeep-reboot-ready.socket && systemd-run --unit upkeep-test-impostor python3 /root/impostor.py && for i in $(seq 100); do curl -fs http://${host.address}:${port}/ && exit 0; sleep 0.1; done; exit 1`,
  );
  expect(started.exitCode, started.stderr).toBe(0);
  expect(started.stdout).toBe('ready: every check passed\n');
  return async () => {
    const restored = await host.ssh('systemctl stop upkeep-test-impostor; systemctl start upkeep-reboot-ready.socket');
    expect(restored.exitCode, restored.stderr).toBe(0);
  };
}
