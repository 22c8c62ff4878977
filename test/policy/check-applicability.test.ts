// Checks that cannot mean anything on a host are not compiled for it: hardware checks on a virtual
// machine (they could only answer UNKNOWN, a permanent alert), backup-freshness on a host exempt
// from backups, update checks on a host exempt from updates. bin/plan warns about the hardware ones.

import { describe, expect, it } from 'vitest';
import { hardwareCheckWarnings } from '../../lib/policy/hardware-warnings.ts';
import { resolveFleet } from '../../lib/policy/resolve.ts';
import { validateFleet } from '../../lib/policy/validate.ts';
import { editable } from '../fixtures/small-fleet.ts';

const HARDWARE = { smart: { kind: 'smart' }, 'cpu-temperature': { kind: 'cpu-temperature' } };

function checksOf(spec: any, host: string): string[] {
  const { fleet, issues } = resolveFleet(spec);
  expect([...issues, ...validateFleet(spec, fleet)]).toEqual([]);
  return (fleet.hosts.find((h) => h.name === host)?.monitoring?.checks ?? []).map((c) => c.name);
}

describe('which checks a host gets', () => {
  it('gives hardware checks to an existing host (bare metal unless the policy says otherwise), not to a virtual one', () => {
    const spec = editable();
    Object.assign(spec.defaults.monitoring.checks, HARDWARE);
    spec.hosts.web2.machine = 'virtual';
    expect(checksOf(spec, 'web1')).toEqual(['cpu-temperature', 'disk-usage', 'failed-units', 'smart']);
    expect(checksOf(spec, 'web2')).toEqual(['disk-usage', 'failed-units']);
  });

  it('takes a provisioned (Hetzner Cloud) server for a virtual machine, and bin/plan warns about its hardware checks', () => {
    const spec = editable();
    Object.assign(spec.defaults.monitoring.checks, HARDWARE);
    delete spec.hosts.web1.address;
    spec.hosts.web1.provision = { serverType: 'cx22' };
    spec.provisioning = { token: { env: 'HCLOUD_TOKEN' }, operatorKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH7bJ5dfg0bE2oQ3oWc8rXb2sU0t1Xcm4t2n2zVt0b1X ops@example.com'], adminNetworks: ['203.0.113.0/24'] };
    const { fleet } = resolveFleet(spec);
    const web1 = fleet.hosts.find((h) => h.name === 'web1')!;
    expect(web1.machine).toBe('virtual');
    expect(web1.monitoring?.checks.map((c) => c.name)).toEqual(['disk-usage', 'failed-units']);
    expect(hardwareCheckWarnings(fleet)).toEqual([
      {
        path: ['hosts', 'web1', 'monitoring', 'checks'],
        message: 'cpu-temperature, smart not compiled: web1 is a virtual machine (a Hetzner Cloud server), with no hardware of its own to check; set machine: "bare-metal" if it is one',
      },
    ]);
  });

  it('keeps hardware checks on a provisioned server the policy calls bare metal, without a warning', () => {
    const spec = editable();
    Object.assign(spec.defaults.monitoring.checks, HARDWARE);
    delete spec.hosts.web1.address;
    spec.hosts.web1.provision = { serverType: 'ax41' };
    spec.hosts.web1.machine = 'bare-metal';
    spec.provisioning = { token: { env: 'HCLOUD_TOKEN' }, operatorKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH7bJ5dfg0bE2oQ3oWc8rXb2sU0t1Xcm4t2n2zVt0b1X ops@example.com'], adminNetworks: ['203.0.113.0/24'] };
    const { fleet } = resolveFleet(spec);
    expect(fleet.hosts.find((h) => h.name === 'web1')?.monitoring?.checks.map((c) => c.name)).toContain('smart');
    expect(hardwareCheckWarnings(fleet)).toEqual([]);
  });

  it('gives no backup-freshness check to a host exempt from backups, and no update checks to one exempt from updates', () => {
    const spec = editable();
    Object.assign(spec.defaults.monitoring.checks, {
      'backup-freshness': { kind: 'backup-freshness' },
      'security-updates': { kind: 'security-updates' },
      'reboot-required': { kind: 'reboot-required' },
    });
    spec.hosts.web1.exempt = { backups: 'Stateless web head: rebuilt from the image, nothing to restore.' };
    spec.hosts.web2.exempt = { updates: 'Appliance: the vendor ships whole-image updates only.' };
    expect(checksOf(spec, 'stage1')).toEqual(['backup-freshness', 'disk-usage', 'failed-units', 'reboot-required', 'security-updates']);
    expect(checksOf(spec, 'web1')).toEqual(['disk-usage', 'failed-units', 'reboot-required', 'security-updates']);
    expect(checksOf(spec, 'web2')).toEqual(['backup-freshness', 'disk-usage', 'failed-units']);
    const { fleet } = resolveFleet(spec);
    expect(fleet.hosts.find((h) => h.name === 'web1')?.monitoring?.skipped).toEqual([{ name: 'backup-freshness', kind: 'backup-freshness', why: 'the host is exempt from backups' }]);
  });
});
