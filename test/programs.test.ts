// Keeps test/programs.ts true: every program the code calls is listed, every listed program for
// the machine is on a fresh machine or installed by test/setup.sh (and setup.sh installs nothing
// else), every program for the test hosts is in their image, and dpkg agrees with the packages.
import { spawnSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { BASE_PACKAGES } from './fleet/base-image.ts';
import { programsInShell, programsInTypeScript } from './program-usage.ts';
import { FRESH_MACHINE_TOOLCHAIN, onPath, PACKAGES, packageOf, programsAvailable, SUPPORT_PACKAGES, whichProgram, type PackageName, type PackageUse } from './programs.ts';

const ROOT = join(import.meta.dirname, '..');
const packages = Object.entries(PACKAGES) as [PackageName, PackageUse][];

/** The packages test/setup.sh installs: the lines of its `packages` list. */
function setupPackages(): string[] {
  const script = readFileSync(join(ROOT, 'test/setup.sh'), 'utf8');
  const list = /^packages='\n([\s\S]*?)'$/m.exec(script);
  if (!list) throw new Error("test/setup.sh has no packages='...' list");
  return list[1]!.split('\n').filter(Boolean);
}

/** Files whose programs are counted: the runtime programs, the tests, the library and the scripts. */
function sourceFiles(): string[] {
  const run = spawnSync('git', ['ls-files', 'lib', 'test', 'bin', '.ci', 'examples'], { cwd: ROOT, encoding: 'utf8' });
  return run.stdout.split('\n').filter((file) => file !== '' && !file.startsWith('test/golden/'));
}

function programsIn(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  if (file.endsWith('.ts')) return programsInTypeScript(text);
  if (file.endsWith('.sh') || /^#!.*\b(ba)?sh\b/.test(text)) {
    // A file sourced from beside the script (`. "$(dirname "$0")/x.sh"`) defines functions it calls.
    const sourced = [...text.matchAll(/^\s*\. "\$\(dirname "\$0"\)\/([a-z0-9-]+\.sh)"/gm)].map((m) => readFileSync(join(ROOT, dirname(file), m[1]!), 'utf8'));
    return programsInShell([...sourced, text].join('\n'));
  }
  return [];
}

const dpkg = onPath('dpkg-query');
/** The packages an installed package depends on directly, without versions or alternatives. */
function dependenciesOf(name: string): string[] {
  const run = spawnSync('dpkg-query', ['-W', '-f=${Pre-Depends}, ${Depends}', name], { encoding: 'utf8' });
  return run.stdout.split(/[,|]/).map((item) => item.trim().split(/[\s:]/)[0]!).filter(Boolean);
}

/** The priority dpkg records for an installed package ("required" ones are in every Debian system). */
function priorityOf(name: string): string | undefined {
  const run = spawnSync('dpkg-query', ['-W', '-f=${Priority}', name], { encoding: 'utf8' });
  return run.status === 0 ? run.stdout.trim() : undefined;
}

describe('the list of programs the tests and runtime programs call', () => {
  it('names every program that the code calls', () => {
    const unlisted = sourceFiles().flatMap((file) => programsIn(file).filter((program) => packageOf(program) === undefined).map((program) => `${file}: ${program}`));
    expect(unlisted).toEqual([]);
  });

  it('reads programs from sh and TypeScript the way a shell and spawn would', () => {
    const script = [
      '#!/bin/sh',
      'f() { echo "not $(printf x)"; }',
      "x=$(dig +short '$(fake)' | head -n 1) # comment: rm",
      'case $1 in check | key) exec timeout 5 restic snapshots ;; esac',
      'echo "${1:-usage: a|b}; $((n + $(wc -l </dev/null)))"',
      'cat <<EOF',
      'curl inside a here-document',
      'EOF',
    ].join('\n');
    expect(programsInShell(script)).toEqual(['cat', 'dig', 'head', 'restic', 'timeout', 'wc']);
    expect(programsInTypeScript(`spawnSync('shellcheck', []); runChecked("/usr/sbin/debootstrap", x); spawn(program, args)`)).toEqual(['debootstrap', 'shellcheck']);
  });

  it('has every program needed on the machine on a fresh machine or installed by test/setup.sh', () => {
    const setup = setupPackages();
    const notCovered = packages
      .filter(([name, use]) => use.on.includes('machine') && !setup.includes(name) && !FRESH_MACHINE_TOOLCHAIN.includes(name))
      .filter(([name]) => !dpkg || priorityOf(name) !== 'required')
      .map(([name]) => name);
    expect(notCovered).toEqual([]);
  });

  it('lets test/setup.sh install only what a test uses and a fresh machine lacks', () => {
    const needed = packages.filter(([, use]) => use.on.includes('machine')).map(([name]) => name as string);
    const unused = setupPackages().filter((name) => !needed.includes(name) && !(name in SUPPORT_PACKAGES));
    expect(unused).toEqual([]);
    const alreadyThere = setupPackages().filter((name) => FRESH_MACHINE_TOOLCHAIN.includes(name) || (dpkg && priorityOf(name) === 'required'));
    expect(alreadyThere).toEqual([]);
  });

  it('has every program needed on the test hosts in their base image', () => {
    const missing = packages
      .filter(([name, use]) => use.on.includes('hosts') && !BASE_PACKAGES.includes(name))
      .filter(([name]) => !dpkg || priorityOf(name) !== 'required')
      .map(([name]) => name);
    expect(missing).toEqual([]);
  });

  it('says why a package is needed nowhere, and only then', () => {
    for (const [name, use] of packages) expect({ name, reason: use.on.length === 0 }).toEqual({ name, reason: use.notRunHere !== undefined });
  });

  describe.skipIf(!dpkg)('checked against dpkg', () => {
    it('names the package that really installed each program found here', () => {
      const found = packages.flatMap(([name, use]) =>
        use.programs.flatMap((program) => {
          const path = whichProgram(program);
          // usrmerge: dpkg knows /bin/sh, not /usr/bin/sh; alternatives: /usr/bin/awk is a link.
          return path === undefined ? [] : [{ name, program, paths: [...new Set([path, path.replace(/^\/usr/, ''), realpathSync(path)])] }];
        }),
      );
      // One dpkg-query for every path: lines "package[, package]: path"; unknown paths go to stderr.
      const owners = new Map<string, string[]>();
      const run = spawnSync('dpkg-query', ['-S', ...found.flatMap((entry) => entry.paths)], { encoding: 'utf8' });
      for (const line of run.stdout.split('\n')) {
        const match = /^([^:]+): (\/.*)$/.exec(line);
        if (match && !line.startsWith('diversion')) owners.set(match[2]!, match[1]!.split(', '));
      }
      const wrong = found.flatMap(({ name, program, paths }) => {
        const dpkgSays = paths.flatMap((path) => owners.get(path) ?? []);
        // Not from dpkg at all (Node.js installed another way) says nothing about the list.
        if (dpkgSays.length === 0 || dpkgSays.includes(name)) return [];
        // The listed package may bring it through a direct dependency (python3 -> python3-minimal).
        if (dependenciesOf(name).some((dependency) => dpkgSays.includes(dependency))) return [];
        return [`${program}: listed under ${name}, dpkg says ${dpkgSays.join(' ')}`];
      });
      expect(found.length).toBeGreaterThan(20);
      expect(wrong).toEqual([]);
    });
  });
});

describe('a test whose program is missing', () => {
  it('is skipped with one line naming the program and the command that installs them all', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      expect(programsAvailable('the dns check', ['dig'], { PATH: '/nonexistent' })).toBe(false);
      expect(warn).toHaveBeenCalledTimes(1);
      const line = warn.mock.calls[0]![0] as string;
      expect(line).toMatch(/^!!! SKIPPING the dns check: missing dig; install everything the tests use with: sh test\/setup\.sh \(as root\)$/);
    } finally {
      warn.mockRestore();
    }
  });

  it('fails the run instead with UPKEEP_REQUIRE_FLEET=1, as in CI', () => {
    expect(() => programsAvailable('the dns check', ['dig'], { PATH: '/nonexistent', UPKEEP_REQUIRE_FLEET: '1' })).toThrow(
      'UPKEEP_REQUIRE_FLEET=1 but the dns check cannot run here: missing dig',
    );
  });

  it('runs when the programs are there', () => {
    expect(programsAvailable('the shell', ['sh'], { PATH: '/bin:/usr/bin' })).toBe(true);
  });
});
