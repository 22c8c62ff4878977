// Which hosts need provisioned peers pinned, read from a real plan directory (bin/plan on the
// hosting example: ns1 and ns2 are Hetzner servers in the derived reboot set "dns"), and the pin
// files bin/apply writes on them.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peerPinFiles, peerPins } from '../../lib/apply/peer-pins.ts';
import { parseProvisionedPeers, provisionedPeers } from '../../lib/compile/peer-pins.ts';
import type { PlanDocument } from '../../lib/plan/plan-format.ts';
import { objectPath } from '../../lib/plan/plan-dir.ts';
import { infraFleet } from '../fixtures/infra-fleet.ts';

const root = join(import.meta.dirname, '..', '..');
const NS1_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRotatedNs1KeyForTestsOnly00000000000000000';
const NS2_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRotatedNs2KeyForTestsOnly00000000000000000';
const INVENTORY = {
  ns1: { name: 'ns1', address: '198.51.100.11', port: 22, hostKey: NS1_KEY },
  ns2: { name: 'ns2', address: '2001:db8::12', port: 22, hostKey: NS2_KEY },
};

describe('peerPins of a provisioned fleet', () => {
  let dir: string;
  let plan: PlanDocument;
  const planned = (host: string, path: string) => readFileSync(join(dir, objectPath(plan.hosts[host]!.files.find((f) => f.path === path)!.sha256!)), 'utf8');

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'upkeep-peer-pins-'));
    const env = { ...process.env, RESTIC_PASSWORD: 'unused', ALERT_TOKEN: 'unused', PROBE_MAIL_PASSWORD: 'unused', HCLOUD_TOKEN: '', NO_COLOR: '1' };
    const run = spawnSync(join(root, 'bin', 'plan'), ['examples/hosting/fleet.ts', '--out', dir], { cwd: root, env, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(2);
    plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as PlanDocument;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('plans neither address nor key for a provisioned reboot set peer: an empty address in reboot-set.env, no compiled signer, and a request for both', () => {
    expect(planned('ns2', '/etc/upkeep/reboot-set.env')).toMatch(/^UPKEEP_REBOOT_PEERS='ns1,,53,9470'$/m);
    expect(planned('ns2', '/etc/upkeep/reboot-set-signers')).not.toMatch(/^ns1 /m);
    expect(parseProvisionedPeers(planned('ns2', '/etc/upkeep/provisioned-peers'))).toEqual(new Map([['ns1', ['address', 'signer']]]));
    // Hosts that reach no provisioned peer get no request.
    expect(plan.hosts.web1!.files.map((f) => f.path)).not.toContain('/etc/upkeep/provisioned-peers');
  });

  it("gives each host its provisioned peers' addresses, and reboot set peers' host keys as allowed signers for readiness only, from bin/apply's inventory", () => {
    expect(peerPins(plan, planned, INVENTORY)).toEqual([
      { host: 'ns1', peers: ['ns2'], files: peerPinFiles([{ ...INVENTORY.ns2, signer: true }]) },
      { host: 'ns2', peers: ['ns1'], files: peerPinFiles([{ ...INVENTORY.ns1, signer: true }]) },
    ]);
    expect(peerPinFiles([{ ...INVENTORY.ns1, signer: true }])).toEqual({
      addresses: '# Managed by upkeep (bin/apply): the addresses of the provisioned hosts this host reaches.\nns1 198.51.100.11\n',
      signers: `# Managed by upkeep (bin/apply): the host keys that sign reboot readiness of the provisioned hosts this host reaches.\nns1 namespaces="upkeep-reboot-ready" ${NS1_KEY}\n`,
    });
  });

  it('leaves the files out, naming the peers, when the inventory has no key for a reboot set peer (--known-hosts)', () => {
    expect(peerPins(plan, planned, { ...INVENTORY, ns1: { name: 'ns1', address: '198.51.100.11', port: 22 } })).toEqual([
      { host: 'ns1', peers: ['ns2'], files: peerPinFiles([{ ...INVENTORY.ns2, signer: true }]) },
      { host: 'ns2', peers: ['ns1'], missing: ['ns1'] },
    ]);
  });

  it('refuses what the runtime programs would not read as one address and one key line', () => {
    const ns1 = { ...INVENTORY.ns1, signer: true };
    expect(() => peerPinFiles([{ ...ns1, address: 'ns1.example.com' }])).toThrow(/ns1: address "ns1.example.com" cannot be pinned: not an IP address/);
    expect(() => peerPinFiles([{ ...ns1, address: '198.51.100.11\nns2 203.0.113.66' }])).toThrow(/cannot be pinned/);
    expect(() => peerPinFiles([{ ...ns1, hostKey: `${NS1_KEY}\nns2 namespaces="upkeep-reboot-ready" ${NS2_KEY}` }])).toThrow(/ns1: host key is not "type base64"/);
    expect(() => peerPinFiles([{ ...ns1, hostKey: 'not a key' }])).toThrow(/host key is not/);
    expect(() => parseProvisionedPeers('ns1 address\nns2; rm -rf / address\n')).toThrow(/not "HOST address \[signer\]"/);
  });
});

describe('provisionedPeers', () => {
  it('asks for the address only of a provisioned monitor whose heartbeat a check reads, and nothing of an existing host', () => {
    const fleet = infraFleet((s) => {
      s.hosts.monitor1.monitoring = { heartbeat: { url: { env: 'HB_URL' } } };
      for (const name of ['web1', 'legacy1']) s.hosts[name].monitoring = { checks: { monitor: { kind: 'monitor-heartbeat', monitor: 'monitor1' } } };
    });
    const host = (name: string) => fleet.hosts.find((h) => h.name === name)!;
    expect(provisionedPeers(fleet, host('web1'))).toEqual(new Map([['monitor1', ['address']]]));
    expect(provisionedPeers(fleet, host('legacy1'))).toEqual(new Map([['monitor1', ['address']]]));
    expect(provisionedPeers(fleet, host('web2'))).toEqual(new Map());
    // The derived reboot set of ns1 and ns2: each needs the other's address and key.
    expect(provisionedPeers(fleet, host('ns1'))).toEqual(new Map([['ns2', ['address', 'signer']]]));
  });
});
