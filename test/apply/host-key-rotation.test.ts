// The pins file logic of bin/apply's host key rotation, with fake connections standing in for ssh:
// which key each connection pins, what the pins file records, and when upkeep refuses a host.
// test/fleet/host-key-rotation.test.ts does the same on real hosts.

import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fingerprint, pinProvisionedHostKeys, type PinnedConnections } from '../../lib/apply/host-key-rotation.ts';
import { Journal } from '../../lib/apply/journal.ts';
import { defaultPinsFile, HOST_KEY_PINS_FILE, pinInventory, readHostKeyPins } from '../../lib/hosts/host-key-pins.ts';
import type { Inventory } from '../../lib/hosts/inventory.ts';
import { TransportError, type RunResult, type Transport } from '../../lib/hosts/transport.ts';
import type { PlanDocument } from '../../lib/plan/plan-format.ts';

const work = mkdtempSync(join(tmpdir(), 'upkeep-host-key-rotation-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const key = (seed: string) => `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${createHash('sha256').update(seed).digest('base64').slice(0, 43)}`;
const LEGACY_KEY = key('legacy1 from the policy');

// web1 and web2 are provisioned (no key in the policy); legacy1's key is in the policy.
const plan = {
  fleet: 'fixture',
  policy: 'policies/upkeep.ts',
  hosts: { legacy1: { hostKey: LEGACY_KEY }, web1: {}, web2: {} },
} as unknown as PlanDocument;

/** buildInventory's answer for Terraform outputs giving each provisioned host `keys[host]`. */
function inventoryWith(keys: Record<string, string>): Inventory {
  return {
    legacy1: { name: 'legacy1', address: '192.0.2.1', port: 22, hostKey: LEGACY_KEY },
    web1: { name: 'web1', address: '192.0.2.11', port: 22, hostKey: keys.web1 as string },
    web2: { name: 'web2', address: '192.0.2.12', port: 2222, hostKey: keys.web2 as string },
  };
}

/** What a fake host does when the applier connects with `pinned` and runs something. */
type Behaviour = (pinned: string, script: string) => RunResult;

/** A server with a current key: refuses connections pinned otherwise, rotates to `next` when asked. */
function server(current: string, next: string): Behaviour {
  let presents = current;
  return (pinned, script) => {
    if (pinned !== presents) throw new TransportError({ host: '?', command: 'ssh', exitCode: 255, stderr: '@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification failed.\n', reason: 'ssh failed' });
    if (script.includes('rotate-host-key')) {
      presents = next;
      return { stdout: `rotated ${next} root@host\n`, stderr: '', exitCode: 0 };
    }
    return { stdout: '', stderr: '', exitCode: 0 };
  };
}

interface Fakes {
  readonly connect: (inventory: Inventory) => PinnedConnections;
  /** Every connection opened: host and the key its known_hosts pinned. */
  readonly opened: { host: string; pinned: string }[];
}

function fakes(hosts: Record<string, Behaviour>): Fakes {
  const opened: { host: string; pinned: string }[] = [];
  return {
    opened,
    connect: (inventory) => ({
      connect(host: string): Transport {
        const pinned = inventory[host]?.hostKey as string;
        opened.push({ host, pinned });
        return {
          host,
          roundTrips: 0,
          run: async (script) => {
            const behaviour = hosts[host];
            if (!behaviour) throw new Error(`unexpected connection to ${host}`);
            return behaviour(pinned, script);
          },
          close: async () => undefined,
        };
      },
      close: async () => undefined,
    }),
  };
}

let counter = 0;
function setting(pins?: object) {
  const dir = join(work, `case-${++counter}`);
  const file = join(dir, HOST_KEY_PINS_FILE);
  const journal = new Journal({ file: join(dir, 'journal.json'), planId: 'p', fleet: 'fixture' });
  // The journal made the directory.
  if (pins) {
    writeFileSync(file, `${JSON.stringify({ format_version: 1, fleet: 'fixture', ...pins })}\n`);
  }
  const lines: string[] = [];
  return { file, journal, lines, progress: (line: string) => void lines.push(line), pins: () => JSON.parse(readFileSync(file, 'utf8')) };
}

const B1 = key('web1 bootstrap');
const B2 = key('web2 bootstrap');
const R1 = key('web1 rotated');
const R2 = key('web2 rotated');

describe('pinning provisioned hosts (pinInventory)', () => {
  it('pins the rotated key where the pins record the bootstrap key Terraform outputs, and leaves the rest for rotation', () => {
    const pins = { file: 'x', existed: true, hosts: { web1: { bootstrap: B1, rotated: R1 }, legacy1: { bootstrap: LEGACY_KEY, rotated: R2 } } };
    const { inventory, bootstrap } = pinInventory(plan, inventoryWith({ web1: `${B1} comment-from-terraform`, web2: B2 }), pins);
    expect(inventory.web1?.hostKey).toBe(R1);
    expect(inventory.web2?.hostKey).toBe(B2);
    // A host keyed in the policy is never rotated nor re-pinned, whatever the file says.
    expect(inventory.legacy1?.hostKey).toBe(LEGACY_KEY);
    expect(bootstrap.map((h) => h.name)).toEqual(['web2']);
  });

  it('finds the pins file beside the policy by default', () => {
    expect(defaultPinsFile(plan, '/project')).toBe('/project/policies/upkeep-host-keys.json');
  });
});

describe('bin/apply host key rotation (pinProvisionedHostKeys, fake hosts)', () => {
  it('records: rotates hosts on their bootstrap key over a bootstrap-pinned connection, records and verifies the new keys', async () => {
    const s = setting();
    const f = fakes({ web1: server(B1, R1), web2: server(B2, R2) });
    const inventory = await pinProvisionedHostKeys({ plan, inventory: inventoryWith({ web1: B1, web2: B2 }), pinsFile: s.file, connect: f.connect, journal: s.journal, progress: s.progress });
    expect(inventory.web1?.hostKey).toBe(R1);
    expect(inventory.web2).toMatchObject({ hostKey: R2, port: 2222 });
    expect(inventory.legacy1?.hostKey).toBe(LEGACY_KEY);
    expect(s.pins()).toEqual({ about: expect.stringContaining('commit this file with the policy'), format_version: 1, fleet: 'fixture', hosts: { web1: { bootstrap: B1, rotated: R1 }, web2: { bootstrap: B2, rotated: R2 } } });
    // Rotation pinned with the bootstrap keys, verification over new connections pinned with the new keys only.
    expect(f.opened).toEqual([
      { host: 'web1', pinned: B1 },
      { host: 'web2', pinned: B2 },
      { host: 'web1', pinned: R1 },
      { host: 'web2', pinned: R2 },
    ]);
    expect(s.journal.document().entries.map((e) => `${e.host} ${e.step} ${e.result}`)).toEqual(['web1 host-key-rotate changed', 'web2 host-key-rotate changed', 'web1 host-key-verify ok', 'web2 host-key-verify ok']);
    expect(s.journal.document().entries[0]?.detail).toBe(`${fingerprint(B1)} -> ${fingerprint(R1)}`);
    expect(s.lines).toContain(`pinned host keys written to ${s.file}: commit it with the policy (bin/apply cannot verify web1, web2 without it)`);
  });

  it('reuses: a recorded rotation pins the rotated key without contacting anyone or writing the file', async () => {
    const s = setting({ hosts: { web1: { bootstrap: B1, rotated: R1 }, web2: { bootstrap: B2, rotated: R2 } } });
    const before = readFileSync(s.file, 'utf8');
    const f = fakes({});
    const inventory = await pinProvisionedHostKeys({ plan, inventory: inventoryWith({ web1: B1, web2: B2 }), pinsFile: s.file, connect: f.connect, journal: s.journal, progress: s.progress });
    expect([inventory.web1?.hostKey, inventory.web2?.hostKey]).toEqual([R1, R2]);
    expect(f.opened).toEqual([]);
    expect(readFileSync(s.file, 'utf8')).toBe(before);
    expect(s.lines).toEqual([]);
  });

  it('rebuilds: a new bootstrap key in the outputs (a rebuilt server) is pinned, rotated again and replaces the record', async () => {
    const s = setting({ hosts: { web1: { bootstrap: B1, rotated: R1 }, web2: { bootstrap: B2, rotated: R2 } } });
    const newBootstrap = key('web1 rebuilt bootstrap');
    const newRotated = key('web1 rebuilt rotated');
    const f = fakes({ web1: server(newBootstrap, newRotated) });
    const inventory = await pinProvisionedHostKeys({ plan, inventory: inventoryWith({ web1: newBootstrap, web2: B2 }), pinsFile: s.file, connect: f.connect, journal: s.journal, progress: s.progress });
    expect(inventory.web1?.hostKey).toBe(newRotated);
    expect(inventory.web2?.hostKey).toBe(R2);
    expect(f.opened).toEqual([
      { host: 'web1', pinned: newBootstrap },
      { host: 'web1', pinned: newRotated },
    ]);
    expect(s.pins().hosts).toEqual({ web1: { bootstrap: newBootstrap, rotated: newRotated }, web2: { bootstrap: B2, rotated: R2 } });
  });

  it('fails closed without the pins file when the host presents another key: names the file to restore, trusts nothing, writes nothing', async () => {
    const s = setting();
    // web1 was rotated by an earlier run whose pins file is gone; web2 is fresh.
    const f = fakes({ web1: server(R1, key('never')), web2: server(B2, R2) });
    const run = pinProvisionedHostKeys({ plan, inventory: inventoryWith({ web1: B1, web2: B2 }), pinsFile: s.file, connect: f.connect, journal: s.journal, progress: s.progress });
    await expect(run).rejects.toThrow(
      `the host keys of provisioned hosts are not all in place; the rollout did not start:\n  - web1 presents neither its bootstrap host key from Terraform (${fingerprint(B1)}) nor a rotated key pinned for it, and upkeep never trusts a key on first use: ${s.file} is missing. If an earlier bin/apply rotated this host's key, restore that file (committed with the policy) and run again; otherwise the server is not the one Terraform created.`,
    );
    // No connection ever pinned a key the host merely presented.
    expect(f.opened.filter((o) => o.host === 'web1')).toEqual([{ host: 'web1', pinned: B1 }]);
    // web2's rotation still happened and is recorded: losing it would lock web2 out.
    expect(s.pins().hosts).toEqual({ web2: { bootstrap: B2, rotated: R2 } });
    expect(s.journal.document().entries.find((e) => e.host === 'web1')).toMatchObject({ step: 'host-key-rotate', result: 'failed' });
  });

  it('says when the file only records an earlier server of that name', async () => {
    const s = setting({ hosts: { web1: { bootstrap: key('older server'), rotated: key('older rotated') } } });
    const f = fakes({ web1: server(R1, key('never')), web2: server(B2, R2) });
    const run = pinProvisionedHostKeys({ plan, inventory: inventoryWith({ web1: B1, web2: B2 }), pinsFile: s.file, connect: f.connect, journal: s.journal, progress: s.progress });
    await expect(run).rejects.toThrow(`${s.file} records a rotation for an earlier server of that name (bootstrap ${fingerprint(key('older server'))}). Restore the version of that file`);
  });

  it('keeps a recorded rotation when the verification over the new key fails, and stops', async () => {
    const s = setting();
    const f = fakes({ web1: server(B1, R1), web2: (pinned, script) => (script.includes('rotate-host-key') ? { stdout: `rotated ${R2}\n`, stderr: '', exitCode: 0 } : server(B2, R2)(pinned, script)) });
    const run = pinProvisionedHostKeys({ plan, inventory: inventoryWith({ web1: B1, web2: B2 }), pinsFile: s.file, connect: f.connect, journal: s.journal, progress: s.progress });
    await expect(run).rejects.toThrow(/web2: the rotated host key is recorded but a new connection pinned with it failed/);
    expect(s.pins().hosts.web2).toEqual({ bootstrap: B2, rotated: R2 });
  });

  it('refuses a pins file of another fleet or with damaged keys', async () => {
    const other = setting({ fleet: 'other', hosts: {} });
    expect(() => readHostKeyPins(other.file, 'fixture')).toThrow(`${other.file} pins the hosts of fleet "other", not "fixture"; give this fleet its own file (bin/apply --host-keys FILE)`);
    const damaged = setting({ hosts: { web1: { bootstrap: B1, rotated: 'ssh-rsa AAAA' } } });
    expect(() => readHostKeyPins(damaged.file, 'fixture')).toThrow(`${damaged.file}: the keys of web1 are not two ssh-ed25519 public keys`);
    expect(existsSync(join(work, 'nowhere', HOST_KEY_PINS_FILE))).toBe(false);
    expect(readHostKeyPins(join(work, 'nowhere', HOST_KEY_PINS_FILE), 'fixture')).toEqual({ file: join(work, 'nowhere', HOST_KEY_PINS_FILE), existed: false, hosts: {} });
  });
});
