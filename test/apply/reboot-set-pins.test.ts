// Which reboot set members need their provisioned peers pinned, read from a real plan directory
// (bin/plan on the hosting example: ns1 and ns2 are Hetzner servers in the derived set "dns"), and
// the pin files bin/apply writes on them.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rebootSetPinFiles, rebootSetPins } from '../../lib/apply/reboot-set-pins.ts';
import type { PlanDocument } from '../../lib/plan/plan-format.ts';
import { objectPath } from '../../lib/plan/plan-dir.ts';

const root = join(import.meta.dirname, '..', '..');
const NS1_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRotatedNs1KeyForTestsOnly00000000000000000';
const NS2_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRotatedNs2KeyForTestsOnly00000000000000000';
const INVENTORY = {
  ns1: { name: 'ns1', address: '198.51.100.11', port: 22, hostKey: NS1_KEY },
  ns2: { name: 'ns2', address: '2001:db8::12', port: 22, hostKey: NS2_KEY },
};

describe('rebootSetPins of a provisioned fleet', () => {
  let dir: string;
  let plan: PlanDocument;
  const planned = (host: string, path: string) => readFileSync(join(dir, objectPath(plan.hosts[host]!.files.find((f) => f.path === path)!.sha256!)), 'utf8');

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'upkeep-reboot-set-pins-'));
    const env = { ...process.env, RESTIC_PASSWORD: 'unused', ALERT_TOKEN: 'unused', PROBE_MAIL_PASSWORD: 'unused', HCLOUD_TOKEN: '', NO_COLOR: '1' };
    const run = spawnSync(join(root, 'bin', 'plan'), ['examples/hosting/fleet.ts', '--out', dir], { cwd: root, env, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(2);
    plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as PlanDocument;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('plans neither address nor key for a provisioned peer: its entry in reboot-set.env has an empty address, and no signer is compiled', () => {
    expect(planned('ns2', '/etc/upkeep/reboot-set.env')).toMatch(/^UPKEEP_REBOOT_PEERS='ns1,,53,9470'$/m);
    expect(planned('ns2', '/etc/upkeep/reboot-set-signers')).not.toMatch(/^ns1 /m);
  });

  it("gives each member its provisioned peers' addresses and host keys from bin/apply's inventory, as allowed signers for readiness only", () => {
    expect(rebootSetPins(plan, planned, INVENTORY)).toEqual([
      { member: 'ns1', set: 'dns', peers: ['ns2'], files: rebootSetPinFiles('dns', [INVENTORY.ns2]) },
      { member: 'ns2', set: 'dns', peers: ['ns1'], files: rebootSetPinFiles('dns', [INVENTORY.ns1]) },
    ]);
    expect(rebootSetPinFiles('dns', [INVENTORY.ns1])).toEqual({
      addresses: '# Managed by upkeep (bin/apply): the addresses of the provisioned members of reboot set dns.\nns1 198.51.100.11\n',
      signers: `# Managed by upkeep (bin/apply): the host keys, which sign their readiness, of the provisioned members of reboot set dns.\nns1 namespaces="upkeep-reboot-ready" ${NS1_KEY}\n`,
    });
  });

  it('leaves the files out, naming the peers, when the inventory has no key for them (--known-hosts)', () => {
    const pins = rebootSetPins(plan, planned, { ...INVENTORY, ns1: { name: 'ns1', address: '198.51.100.11', port: 22 } });
    expect(pins).toEqual([
      { member: 'ns1', set: 'dns', peers: ['ns2'], files: rebootSetPinFiles('dns', [INVENTORY.ns2]) },
      { member: 'ns2', set: 'dns', peers: ['ns1'], missing: ['ns1'] },
    ]);
  });

  it('refuses what reboot.sh would not read as one address and one key line', () => {
    expect(() => rebootSetPinFiles('dns', [{ ...INVENTORY.ns1, address: 'ns1.example.com' }])).toThrow(/ns1: address "ns1.example.com" cannot be pinned for reboot set dns: not an IP address/);
    expect(() => rebootSetPinFiles('dns', [{ ...INVENTORY.ns1, address: '198.51.100.11\nns2 203.0.113.66' }])).toThrow(/cannot be pinned/);
    expect(() => rebootSetPinFiles('dns', [{ ...INVENTORY.ns1, hostKey: `${NS1_KEY}\nns2 namespaces="upkeep-reboot-ready" ${NS2_KEY}` }])).toThrow(/ns1: host key is not "type base64"/);
    expect(() => rebootSetPinFiles('dns', [{ ...INVENTORY.ns1, hostKey: 'not a key' }])).toThrow(/host key is not/);
  });
});
