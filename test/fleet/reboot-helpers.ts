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
