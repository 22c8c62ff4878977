// The local Debian repository of the update tests, seen from a real host: apt installs its
// packages, and unattended-upgrades takes the security suite as Debian's security archive (and
// only that suite when asked for security origins).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { programsAvailable } from '../programs.ts';
import { startDebRepo, type DebRepo } from './deb-repo.ts';
import { FLEET_HOOK_TIMEOUT_MS, FLEET_TEST_TIMEOUT_MS, fleetAvailable, startFleet, type TestFleet } from './testbed.ts';

const available = fleetAvailable('the test Debian repository (test/fleet/deb-repo.test.ts)') && programsAvailable('the test Debian repository', ['dpkg-deb']);

describe.skipIf(!available)('a local Debian repository served to a test host', () => {
  let fleet: TestFleet;
  let repo: DebRepo;

  beforeAll(async () => {
    repo = await startDebRepo();
    fleet = await startFleet(['repo1']);
    await repo.useOn(fleet.host('repo1'));
  }, FLEET_HOOK_TIMEOUT_MS);
  afterAll(async () => {
    await fleet?.stop();
    await repo?.stop();
  }, FLEET_HOOK_TIMEOUT_MS);

  it('installs a published package, and unattended-upgrades with security origins takes only the security suite', async () => {
    const host = fleet.host('repo1');
    await repo.publish({ name: 'upkeep-demo', version: '1.0-1', suite: 'bookworm' });
    await repo.publish({ name: 'upkeep-other', version: '1.0-1', suite: 'bookworm' });
    const install = await host.ssh('apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get install -y upkeep-demo upkeep-other && cat /usr/share/upkeep-demo/version');
    expect(install.exitCode, install.stderr).toBe(0);
    expect(install.stdout.trim().split('\n').at(-1)).toBe('1.0-1');

    await repo.publish({ name: 'upkeep-demo', version: '1.0-1+deb12u1', suite: 'bookworm-security' });
    await repo.publish({ name: 'upkeep-other', version: '1.0-2', suite: 'bookworm' });
    const policy = await host.ssh('apt-get -q update >/dev/null && apt-cache policy');
    expect(policy.stdout).toContain('o=Debian,a=bookworm-security,n=bookworm-security,l=Debian-Security');

    const securityOnly = '#clear Unattended-Upgrade::Origins-Pattern;\nUnattended-Upgrade::Origins-Pattern { "origin=Debian,codename=${distro_codename}-security,label=Debian-Security"; };\n';
    const upgrade = await host.ssh(
      "cat > /etc/apt/apt.conf.d/99security-only && DEBIAN_FRONTEND=noninteractive unattended-upgrade -v; dpkg-query -W -f '${Package} ${Version}\\n' upkeep-demo upkeep-other",
      { input: securityOnly },
    );
    expect(upgrade.stdout).toContain('upkeep-demo 1.0-1+deb12u1');
    expect(upgrade.stdout).toContain('upkeep-other 1.0-1\n');
  }, FLEET_TEST_TIMEOUT_MS);
});
