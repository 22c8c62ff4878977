// A FAKE Hetzner Cloud for the contract fleet: no engine can reach Hetzner or download its provider
// here, so test/fixtures/fake-terraform stands in for tofu and answers `output -json` with the test
// hosts' loopback addresses and host keys in the form the real stack's upkeep_hosts output has
// (lib/compile/infra.ts). bin/apply then takes the real provisioning path: engine steps, inventory
// from the outputs, bootstrap host keys pinned and rotated on first contact.

import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TERRAFORM_HOSTS_OUTPUT } from '../../lib/compile/infra.ts';
import type { TestHost } from '../fleet/testbed.ts';

const FAKE_ENGINE = join(import.meta.dirname, '..', 'fixtures', 'fake-terraform');

export interface FakeHetzner {
  /** Environment for bin/plan and bin/apply: UPKEEP_TERRAFORM points at the fake, which answers from `canned`. */
  readonly env: Record<string, string>;
  /** File the fake appends each of its command lines to. */
  readonly record: string;
}

/** The fake engine in `dir`, "provisioning" exactly `servers`. */
export function fakeHetzner(dir: string, servers: readonly TestHost[]): FakeHetzner {
  const bin = join(dir, 'bin');
  const canned = join(dir, 'canned');
  mkdirSync(bin, { recursive: true });
  mkdirSync(canned, { recursive: true });
  symlinkSync(FAKE_ENGINE, join(bin, 'tofu'));
  const hosts = Object.fromEntries(servers.map((h) => [h.name, { address: h.address, host_key: h.hostKey, port: h.port }]));
  writeFileSync(join(canned, 'output.stdout'), JSON.stringify({ [TERRAFORM_HOSTS_OUTPUT]: { sensitive: false, type: 'object', value: hosts } }));
  // The servers exist: the engine's plan has nothing to change.
  writeFileSync(join(canned, 'show.stdout'), JSON.stringify({ format_version: '1.2', resource_changes: [] }));
  const record = join(dir, 'calls.log');
  writeFileSync(record, '');
  return { env: { UPKEEP_TERRAFORM: join(bin, 'tofu'), FAKE_TERRAFORM_CANNED: canned, FAKE_TERRAFORM_RECORD: record }, record };
}
