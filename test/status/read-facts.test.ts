// Reading the fleet's facts: one round trip per host, and a host that cannot be read is reported
// beside the others, not thrown. Local transports into image roots stand in for ssh here; the
// fleet test reads real hosts over ssh.

import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readFleetFacts } from '../../lib/hosts/host-facts.ts';
import { LocalTransport } from '../../lib/hosts/local-transport.ts';
import { TransportError, type Transport } from '../../lib/hosts/transport.ts';

function imageRoot(generation: string): string {
  const root = mkdtempSync(join(tmpdir(), 'upkeep-facts-root-'));
  mkdirSync(join(root, 'var/lib/upkeep/backup'), { recursive: true });
  writeFileSync(join(root, 'var/lib/upkeep/manifest'), `upkeep-manifest 1\ngeneration ${generation}\nplan p1\nprevious none\n`);
  writeFileSync(join(root, 'var/lib/upkeep/backup/backup.status'), '1700000000 ok snapshot saved\n');
  return root;
}

describe('readFleetFacts', () => {
  it('reads each host in one round trip and reports an unreachable one by name', async () => {
    const transports: Transport[] = [];
    const unreachable: Transport = {
      host: 'gone1',
      roundTrips: 0,
      run: () => Promise.reject(new TransportError({ host: 'gone1', command: 'ssh gone1', exitCode: 255, stderr: 'Connection refused', reason: 'ssh failed' })),
      close: async () => {},
    };
    const roots: Record<string, string> = { web1: imageRoot('g-web1'), web2: imageRoot('g-web2') };
    const facts = await readFleetFacts(['web2', 'gone1', 'web1'], (host) => {
      const t = host === 'gone1' ? unreachable : new LocalTransport(roots[host]!, host);
      transports.push(t);
      return t;
    });
    expect(Object.keys(facts)).toEqual(['gone1', 'web1', 'web2']);
    expect(facts.web1).toMatchObject({ host: 'web1', generation: 'g-web1', planId: 'p1', backups: { backup: { at: 1_700_000_000, result: 'ok' } } });
    expect(facts.web2).toMatchObject({ generation: 'g-web2' });
    expect(facts.gone1).toEqual({ host: 'gone1', error: expect.stringMatching(/^gone1: ssh failed/) });
    expect(transports.filter((t) => t.host !== 'gone1').map((t) => [t.host, t.roundTrips]).sort()).toEqual([['web1', 1], ['web2', 1]]);
  });
});
