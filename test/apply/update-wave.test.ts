// The update wave's choice of what to promote, from what the staging hosts report (pure; the wave
// itself runs on real hosts in test/fleet/update-promotion.test.ts).

import { describe, expect, it } from 'vitest';
import { parsePromoteReport, parseStaged, promotable, type StagedPackage } from '../../lib/apply/update-wave.ts';

const pkg = (name: string, version: string, kind: 'security' | 'routine' = 'security', cls: StagedPackage['class'] = 'small', ageSeconds = 100): StagedPackage => ({ name, version, kind, class: cls, ageSeconds });
const hosts = (entries: Record<string, StagedPackage[]>) => new Map(Object.entries(entries));

describe('promotable', () => {
  it('promotes what every staging host runs before and after the soak, of the wave\'s kind', () => {
    const before = hosts({ stage1: [pkg('openssl', '3.0.1'), pkg('tzdata', '2026b', 'routine')], stage2: [pkg('openssl', '3.0.1', 'security', 'restart', 50)] });
    expect(promotable('security', before, before)).toEqual({ packages: [pkg('openssl', '3.0.1', 'security', 'restart', 50)], dropped: [] });
    expect(promotable('routine', before, before).packages.map((p) => p.name)).toEqual(['openssl', 'tzdata']);
  });

  it('drops a version a staging host moved past during the soak', () => {
    const before = hosts({ stage1: [pkg('openssl', '3.0.1')] });
    const after = hosts({ stage1: [pkg('openssl', '3.0.2')] });
    expect(promotable('security', before, after)).toEqual({ packages: [], dropped: ['openssl 3.0.1: stage1 no longer runs it after the soak'] });
  });

  it('drops a package the staging hosts run in different versions', () => {
    const before = hosts({ stage1: [pkg('openssl', '3.0.1')], stage2: [pkg('openssl', '3.0.2')] });
    expect(promotable('security', before, before)).toEqual({ packages: [], dropped: ['openssl: staging hosts run different versions (3.0.1, 3.0.2)'] });
  });
});

describe('parseStaged', () => {
  it('reads "name version kind class age" lines and refuses anything else, naming the host', () => {
    expect(parseStaged('stage1', 'openssl 3.0.1-1+deb12u1 security reboot 42\n')).toEqual([pkg('openssl', '3.0.1-1+deb12u1', 'security', 'reboot', 42)]);
    expect(() => parseStaged('stage1', 'openssl 3.0.1;rm -rf / security small 1\n')).toThrow(/^stage1: unexpected line from updates.sh staged/);
    expect(() => parseStaged('stage1', 'openssl 3.0.1 security sometimes 1\n')).toThrow(/stage1/);
  });
});

describe('parsePromoteReport', () => {
  it('reads what a production host installed, left for its window and skipped because its policy holds it', () => {
    expect(parsePromoteReport('held postgresql-15 15.2-1\ndeferred linux-image-amd64 6.1.1 reboot\ninstalled openssl 3.0.1\n')).toEqual({
      installed: ['openssl 3.0.1'],
      deferred: ['linux-image-amd64 6.1.1 reboot'],
      held: ['postgresql-15 15.2-1'],
    });
  });
});
