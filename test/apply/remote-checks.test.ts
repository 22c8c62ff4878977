// Which checks watch a host from another host, read from the planned check files of the hosting
// example: the monitor's http, mail and DNS checks are part of their subjects' health gates.

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { remoteChecks } from '../../lib/apply/remote-checks.ts';
import { compileFleet } from '../../lib/compile/fleet.ts';
import { buildPlan } from '../../lib/plan/build-plan.ts';
import { loadPolicy } from '../../lib/policy/load.ts';
import { prepareFleet } from '../../lib/policy/prepare.ts';

const root = join(import.meta.dirname, '..', '..');

describe('remote checks of a plan', () => {
  it('finds the monitor\'s checks of each host of the hosting example, and none a host runs on itself', { timeout: 60_000 }, async () => {
    const { spec, source } = await loadPolicy(join(root, 'examples/hosting/fleet.ts'));
    const fleet = prepareFleet(spec, source);
    const compiled = compileFleet(fleet);
    const { document } = buildPlan({ fleet, hosts: compiled.hosts, base: new Map(), policy: 'examples/hosting/fleet.ts', metadata: { created_at: '2026-01-01T00:00:00Z', upkeep_version: 'test' } });
    const content = (host: string, path: string) => compiled.hosts.find((h) => h.host === host)!.files.find((f) => f.path === path)!.content!;
    const found = remoteChecks(document, content);
    expect(found.filter((c) => c.subject === 'stage1')).toEqual([
      { subject: 'stage1', runner: 'monitor1', unit: 'upkeep-check-stage1-http.service' },
      { subject: 'stage1', runner: 'monitor1', unit: 'upkeep-check-stage1-tls-expiry.service' },
    ]);
    expect(found.filter((c) => c.subject === 'mail1').map((c) => c.unit)).toEqual(['upkeep-check-mail1-mail-delivery.service', 'upkeep-check-mail1-smtp.service']);
    expect(new Set(found.map((c) => c.runner))).toEqual(new Set(['monitor1']));
    expect(found.some((c) => c.subject === 'monitor1')).toBe(false);
  });
});
