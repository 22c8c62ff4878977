// The backup server backed up: backup1's own backup goes off-site over sftp to a storage box (box1,
// a test host standing in for the hosting example's storage box), whose host key the policy pins.
// The storage box's side is what a provider offers: an sftp account with the client's key in it;
// it is not a host of the fleet.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPlan } from './apply-helpers.ts';
import { runCommand } from './run-command.ts';
import { FLEET_HOOK_TIMEOUT_MS, FLEET_TEST_TIMEOUT_MS, fleetAvailable, startFleet, type TestFleet } from './testbed.ts';

const PASSWORD_ENV = 'TEST_OFFSITE_SECRET';
const EXEMPT = 'A throwaway test container: only the off-site backup is under test here.';

function policy(fleet: TestFleet): string {
  const box = fleet.host('box1');
  const backup = fleet.host('backup1');
  return [
    'name: offsitetest',
    'groups:',
    '  staging: { staging: true }',
    // box1 is the provider's machine, not a host of the fleet.
    'hosts:',
    '  backup1:',
    '    group: staging',
    '    roles: [backup]',
    `    address: ${backup.address}`,
    `    hostKey: ${backup.hostKey}`,
    '    backups:',
    '      paths: ["/srv/data"]',
    `      password: { env: ${PASSWORD_ENV} }`,
    '      repository:',
    `        url: "sftp:box@${box.address}:/home/box/backup1"`,
    `        hostKey: ${box.hostKey}`,
    '    exempt:',
    `      updates: "${EXEMPT}"`,
    `      monitoring: "${EXEMPT}"`,
    '',
  ].join('\n');
}

describe.skipIf(!fleetAvailable('the off-site backup test (test/fleet/backup-offsite.test.ts)'))("the backup server's own backup, off-site over sftp with a pinned host key", () => {
  let fleet: TestFleet;
  let work: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'upkeep-offsite-test-'));
    process.env[PASSWORD_ENV] = randomBytes(18).toString('base64');
    fleet = await startFleet(['box1', 'backup1']);
    writeFileSync(join(work, 'fleet.yaml'), policy(fleet));
  }, FLEET_HOOK_TIMEOUT_MS);
  afterAll(async () => {
    delete process.env[PASSWORD_ENV];
    await fleet?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  }, FLEET_HOOK_TIMEOUT_MS);

  it('pins the storage box key from the policy, and backup1 backs up into the storage box', async () => {
    const out = join(work, 'plan');
    const planned = await runCommand(join(import.meta.dirname, '..', '..', 'bin', 'plan'), [join(work, 'fleet.yaml'), '--out', out], { env: { ...process.env, NO_COLOR: '1' } });
    expect(planned.exitCode, planned.stdout + planned.stderr).toBe(2);
    const run = await applyPlan(fleet, out);
    expect(run.exitCode, run.stderr).toBe(0);

    const backup1 = fleet.host('backup1');
    const box1 = fleet.host('box1');
    expect((await backup1.ssh('cat /etc/upkeep/restic/known_hosts')).stdout).toBe(`${box1.address} ${box1.hostKey}\n`);
    // The provider's side: an sftp account that accepts backup1's key (the operator adds it once).
    const key = (await backup1.ssh('/usr/local/lib/upkeep/backup.sh key')).stdout;
    expect(key).toMatch(/^ssh-ed25519 /);
    const account = await box1.ssh('useradd -m -s /bin/sh box && install -d -o box -g box -m 0700 /home/box/.ssh && cat > /home/box/.ssh/authorized_keys && chown box:box /home/box/.ssh/authorized_keys', { input: key });
    expect(account.exitCode, account.stderr).toBe(0);

    const content = randomBytes(8192);
    expect((await backup1.ssh('mkdir -p /srv/data && base64 -d > /srv/data/precious.bin', { input: content.toString('base64') })).exitCode).toBe(0);
    const backup = await backup1.ssh('systemctl start upkeep-backup.service; echo "exit $?"; cat /var/lib/upkeep/backup/backup.status', { timeoutMs: 300_000 });
    expect(backup.stdout, (await backup1.ssh('journalctl -u upkeep-backup.service --no-pager | tail -20')).stdout).toMatch(/^exit 0\n\d+ ok snapshot saved\n$/);

    // The snapshot is on the storage box: read there with backup1's password, the file byte for byte.
    const password = (await backup1.ssh('cat /etc/upkeep/restic/backup.password')).stdout;
    const offsite = await box1.ssh(
      'export RESTIC_PASSWORD="$(cat)"; restic -r /home/box/backup1 --no-lock --no-cache snapshots --json >/root/snapshots.json && restic -r /home/box/backup1 --no-lock --no-cache dump latest /srv/data/precious.bin | base64 -w0',
      { input: password, timeoutMs: 300_000 },
    );
    expect(offsite.exitCode, offsite.stderr).toBe(0);
    expect(Buffer.from(offsite.stdout, 'base64').equals(content)).toBe(true);
    expect(JSON.parse((await box1.ssh('cat /root/snapshots.json')).stdout)).toMatchObject([{ hostname: 'backup1', paths: ['/srv/data'] }]);
  }, FLEET_TEST_TIMEOUT_MS);
});
