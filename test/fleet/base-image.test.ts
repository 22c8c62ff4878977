// The base image cache, with a FAKE debootstrap: the real one takes minutes and downloads from
// the Debian mirror; it runs for real the first time startFleet is used on a machine. The fake
// records the exact command line so what the real one would be given is still checked.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { debianArchive, machineAptSources } from './apt-mirror.ts';
import { BASE_PACKAGES, ensureBaseImage, imageKey, imageSystemdVersion, UPDATE_HOST_PACKAGES, type ImageSuite } from './base-image.ts';
import { removeTree } from './remove-tree.ts';

const FAKE_DEBOOTSTRAP = `#!/bin/sh
# FAKE debootstrap: records its arguments and makes a tiny tree with host-specific files in it.
set -eu
printf '%s\\n' "$*" >> "$FAKE_DEBOOTSTRAP_LOG"
target=$4
mkdir -p "$target/etc/ssh" "$target/var/lib/dbus"
echo private > "$target/etc/ssh/ssh_host_ed25519_key"
echo 0123456789abcdef0123456789abcdef > "$target/etc/machine-id"
echo 0123456789abcdef0123456789abcdef > "$target/var/lib/dbus/machine-id"
sleep "\${FAKE_DEBOOTSTRAP_SECONDS:-0}"
if [ "\${FAKE_DEBOOTSTRAP_FAIL:-}" = 1 ]; then echo "E: Couldn't download packages: restic" >&2; exit 1; fi
`;

const saved = { ...process.env };
let scratch: string;
let cache: string;
let log: string;

beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), 'upkeep-base-image-test-'));
  mkdirSync(join(scratch, 'bin'));
  writeFileSync(join(scratch, 'bin/debootstrap'), FAKE_DEBOOTSTRAP);
  chmodSync(join(scratch, 'bin/debootstrap'), 0o755);
  cache = join(scratch, 'cache');
  log = join(scratch, 'debootstrap.log');
  process.env.PATH = `${join(scratch, 'bin')}:${saved.PATH ?? ''}`;
  process.env.UPKEEP_TESTBED_CACHE = cache;
  process.env.FAKE_DEBOOTSTRAP_LOG = log;
  delete process.env.UPKEEP_TESTBED_MIRROR;
});

afterEach(() => {
  process.env = { ...saved };
  removeTree(scratch);
});

function debootstrapRuns(): string[] {
  return existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [];
}

describe('the base image cache', () => {
  it('builds once for concurrent callers, from the Debian archive of the machine\'s apt sources, and strips what is host-specific', async () => {
    process.env.FAKE_DEBOOTSTRAP_SECONDS = '1';
    const [first, second] = await Promise.all([ensureBaseImage(['jq']), ensureBaseImage(['jq'])]);

    expect(second).toBe(first);
    expect(first).toBe(join(cache, imageKey(['jq'])));
    expect(debootstrapRuns()).toEqual([
      `--variant=minbase --include=${[...BASE_PACKAGES, 'jq'].sort().join(',')} bookworm ${join(cache, `${imageKey(['jq'])}.building-${process.pid}`)} ${debianArchive(machineAptSources())}`,
    ]);
    expect(readdirSync(join(first, 'etc/ssh'))).toEqual([]);
    expect(readFileSync(join(first, 'etc/machine-id'), 'utf8')).toBe('');
    expect(existsSync(join(first, 'var/lib/dbus/machine-id'))).toBe(false);
    expect(readdirSync(cache)).toEqual([imageKey(['jq'])]);
  });

  it('reuses a cached image without running debootstrap', async () => {
    await ensureBaseImage();
    await ensureBaseImage();
    expect(debootstrapRuns()).toHaveLength(1);
  });

  it('leaves no image behind when debootstrap fails, so the next run builds again', async () => {
    process.env.FAKE_DEBOOTSTRAP_FAIL = '1';
    await expect(ensureBaseImage()).rejects.toThrow(/debootstrap .* exited with 1:\nE: Couldn't download packages: restic/);
    expect(readdirSync(cache)).toEqual([]);

    delete process.env.FAKE_DEBOOTSTRAP_FAIL;
    expect(existsSync(await ensureBaseImage())).toBe(true);
    expect(debootstrapRuns()).toHaveLength(2);
  });

  it('removes a half-made image left by a build whose process died', async () => {
    const deadPid = spawnSync('true').pid!;
    const leftover = join(cache, `${imageKey([])}.building-${deadPid}`);
    mkdirSync(join(leftover, 'etc'), { recursive: true });

    const image = await ensureBaseImage();

    expect(existsSync(leftover)).toBe(false);
    expect(readdirSync(cache)).toEqual([imageKey([])]);
    expect(image).toBe(join(cache, imageKey([])));
  });

  it('keys the cache by the package list and mirror, not by how the list was written', () => {
    expect(imageKey(['jq', 'curl', 'jq'])).toBe(imageKey(['jq']));
    expect(imageKey(['jq'])).not.toBe(imageKey([]));
    const withDefaultMirror = imageKey([]);
    process.env.UPKEEP_TESTBED_MIRROR = 'http://mirror.example/debian';
    expect(imageKey([])).not.toBe(withDefaultMirror);
  });

  it('builds another suite into an image of its own, with its own packages and debootstrap script, keyed by its codename', async () => {
    const testing: ImageSuite = { codename: 'forky', packages: UPDATE_HOST_PACKAGES, script: 'sid' };
    const bookworm = await ensureBaseImage();
    const forky = await ensureBaseImage([], testing);

    expect(forky).not.toBe(bookworm);
    expect(forky).toBe(join(cache, imageKey([], testing)));
    expect(debootstrapRuns()[1]).toBe(
      `--variant=minbase --include=${[...UPDATE_HOST_PACKAGES].sort().join(',')} forky ${join(cache, `${imageKey([], testing)}.building-${process.pid}`)} ${debianArchive(machineAptSources())} /usr/share/debootstrap/scripts/sid`,
    );
    expect(imageKey([], { ...testing, codename: 'duke' })).not.toBe(imageKey([], testing));
    expect(() => imageKey([], { ...testing, codename: 'forky main' })).toThrow('invalid Debian suite or debootstrap script name: "forky main"');
    expect(() => imageKey([], { ...testing, script: '../../../tmp/x' })).toThrow('invalid Debian suite or debootstrap script name');
  });

  it('reads the systemd version an image has from its dpkg database', () => {
    const image = join(scratch, 'image');
    mkdirSync(join(image, 'var/lib/dpkg'), { recursive: true });
    expect(imageSystemdVersion(image)).toBeUndefined();
    writeFileSync(
      join(image, 'var/lib/dpkg/status'),
      'Package: systemd-sysv\nStatus: install ok installed\nVersion: 999-1\n\nPackage: systemd\nStatus: install ok installed\nVersion: 262-1\n\nPackage: udev\nStatus: install ok installed\nVersion: 1:300\n',
    );
    expect(imageSystemdVersion(image)).toBe(262);
  });

  it('refuses package names Debian would not accept', () => {
    expect(() => imageKey(['jq; rm -rf /'])).toThrow('invalid Debian package names: jq; rm -rf /');
  });
});
