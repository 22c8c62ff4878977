// A backup host's retention run for one client while something holds a lock on the client's
// repository: shared by the tests that prove retention waits for a client's backup
// (backup-restore.test.ts) and for a whole-host restore reading the repository
// (backup-whole-restore.test.ts).

import { expect } from 'vitest';
import type { TestHost } from './testbed.ts';

/**
 * Starts `client`'s retention unit on `backupHost` (retries two seconds apart instead of a minute)
 * while the caller holds a lock on the repository; expects the unit to say it waits for the lock,
 * calls `release` to end the hold, and expects the unit to succeed at its next try.
 */
export async function expectRetentionToWait(backupHost: TestHost, client: string, release: () => Promise<void>): Promise<void> {
  const unit = `upkeep-backup-prune-${client}.service`;
  const dropIn = `/run/systemd/system/${unit}.d`;
  await backupHost.ssh(`mkdir -p ${dropIn} && printf '[Service]\\nEnvironment=UPKEEP_LOCK_RETRY=2\\n' > ${dropIn}/retry.conf && systemctl daemon-reload`);
  try {
    const since = (await backupHost.ssh('date +%s')).stdout.trim();
    const journal = async () => (await backupHost.ssh(`journalctl -u ${unit} --no-pager --since @${since}`)).stdout;
    expect((await backupHost.ssh(`systemctl start --no-block ${unit}`)).exitCode).toBe(0);
    // Until it says it waits, or ends without having waited.
    const waiting = await backupHost.ssh(
      `for i in $(seq 600); do journalctl -u ${unit} --no-pager --since @${since} | grep -q "is locked (by a client's backup, its restore drill or a restore reading it); trying again in 2s" && exit 0; [ "$(systemctl show -p ActiveState --value ${unit})" = activating ] || exit 1; sleep 0.5; done; exit 1`,
      { timeoutMs: 600_000 },
    );
    expect(waiting.exitCode, await journal()).toBe(0);
    await release();
    const result = await backupHost.ssh(
      `for i in $(seq 1200); do [ "$(systemctl show -p ActiveState --value ${unit})" = activating ] || break; sleep 0.5; done; systemctl show -p Result --value ${unit}`,
      { timeoutMs: 900_000 },
    );
    expect(result.stdout, await journal()).toBe('success\n');
  } finally {
    await backupHost.ssh(`rm -rf ${dropIn} && systemctl daemon-reload`);
  }
}
