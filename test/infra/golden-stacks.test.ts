import { describe, it } from 'vitest';
import hosting from '../../examples/hosting/fleet.ts';
import { STACK_FILE, synthesizeInfra } from '../../lib/compile/infra.ts';
import { prepareFleet } from '../../lib/policy/prepare.ts';
import { generationsOf, infraFleet } from '../fixtures/infra-fleet.ts';
import { expectGolden } from './golden.ts';

describe('the synthesized stacks', () => {
  it('of the hosting example match their golden file', () => {
    const fleet = prepareFleet(hosting);
    // Fixed generations: the golden shows the stack, not the host compilers' hashes.
    const generations = Object.fromEntries(fleet.hosts.map((h) => [h.name, `generation-of-${h.name}`]));
    expectGolden('infra/hosting.main.tf.json', synthesizeInfra(fleet, generations, { projectDir: '../..' })![STACK_FILE]);
  });

  it('of the infra fixture (two network zones, an existing backup client, ssh on 2222) match their golden file', () => {
    const fleet = infraFleet();
    expectGolden('infra/acme.main.tf.json', synthesizeInfra(fleet, generationsOf(fleet))![STACK_FILE]);
  });
});
