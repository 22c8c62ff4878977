import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { debianArchive, machineAptSources, parseAptSources, testbedMirror } from './apt-mirror.ts';

// Host names under .example: a test names no real registry.
const DEB822 = `Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`;

function machineWith(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'upkeep-apt-sources-'));
  mkdirSync(join(root, 'etc/apt/sources.list.d'), { recursive: true });
  for (const [path, text] of Object.entries(files)) writeFileSync(join(root, 'etc/apt', path), text);
  return root;
}

describe('the Debian mirror read from the apt sources', () => {
  it('takes the Debian archive of a deb822 file, not its security suite', () => {
    const root = machineWith({ 'sources.list.d/debian.sources': DEB822 });
    expect(testbedMirror({}, root)).toBe('http://mirror.example/debian');
  });

  it('skips snapshot archives, security suites and third-party repositories with their own keyring', () => {
    const sources = parseAptSources(
      [
        'deb http://snapshot.example/archive/debian/20250520T000000Z bookworm main',
        'deb [signed-by=/usr/share/keyrings/vendor.gpg] https://vendor.example/apt stable main',
        'deb http://security.example/debian-security bookworm-security main',
        'deb [arch=amd64] http://proxy.example:3142/debian bookworm main contrib # a comment',
      ].join('\n'),
      'one-line',
    );
    expect(debianArchive(sources)).toBe('http://proxy.example:3142/debian');
  });

  it('ignores files apt itself ignores and stanzas that are disabled', () => {
    const root = machineWith({
      'sources.list.d/old.list.disabled': 'deb http://old.example/debian bookworm main\n',
      'sources.list.d/a.sources': DEB822.replace('Types: deb\n#', 'Types: deb\nEnabled: no\n#'),
      'sources.list.d/b.list': 'deb http://second.example/debian bookworm main\n',
    });
    expect(machineAptSources(root).map((s) => s.uri)).toEqual(['http://mirror.example/debian-security', 'http://second.example/debian']);
    expect(testbedMirror({}, root)).toBe('http://second.example/debian');
  });

  it('lets UPKEEP_TESTBED_MIRROR override the machine, and says what to do when there is no archive', () => {
    const root = machineWith({});
    expect(testbedMirror({ UPKEEP_TESTBED_MIRROR: 'http://local.example/debian' }, root)).toBe('http://local.example/debian');
    expect(() => testbedMirror({}, root)).toThrow(/no Debian archive in .*sources\.list.*set UPKEEP_TESTBED_MIRROR/);
  });
});
