// The Debian base image every test host boots from, read-only through an overlay. Built once per
// machine with debootstrap and cached outside the repository, keyed by everything that goes into
// it, so a second run skips the build. The build happens in a temporary directory that is renamed
// into place only when complete: a killed build never leaves a half-made image behind.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { testbedMirror } from './apt-mirror.ts';
import { isAlive, release, tryClaim } from './owner-lock.ts';
import { removeTree } from './remove-tree.ts';
import { runChecked } from './run-command.ts';

export const BASE_SUITE = 'bookworm';
/** What a stock Debian server managed by upkeep has, plus what the fleet tests use on hosts. */
export const BASE_PACKAGES: readonly string[] = [
  'apt-utils',
  'bind9-dnsutils',
  'ca-certificates',
  'curl',
  'dbus',
  'dovecot-imapd',
  'iproute2',
  'nginx-light',
  'nsd',
  'openssh-client',
  'openssh-server',
  'openssl',
  'postfix',
  'procps',
  'python3',
  'rclone',
  'restic',
  'systemd',
  'systemd-sysv',
  'unattended-upgrades',
];

/**
 * What a host needs for upkeep's update runs and checks and nothing more: ssh and systemd for the
 * applier and its health gate, apt and unattended-upgrades for updates.sh, curl for alerts (the
 * plan's own packages for an apt host). For images of other suites (Debian testing for the
 * rolling channel), which CI builds from scratch on every run: this set takes about a minute,
 * BASE_PACKAGES several.
 */
export const UPDATE_HOST_PACKAGES: readonly string[] = ['curl', 'dbus', 'openssh-server', 'systemd', 'systemd-sysv', 'unattended-upgrades'];

/** A Debian suite a test image is made from, with the packages its hosts get. */
export interface ImageSuite {
  /** The codename debootstrap installs and the hosts' apt sources name, e.g. "bookworm" or "forky". */
  readonly codename: string;
  /** The packages the image is made with, before a test's extra ones. */
  readonly packages: readonly string[];
  /**
   * debootstrap's script for the suite, when the machine's debootstrap may not know the codename
   * (testing's is newer than the machine's release): "sid" serves testing and unstable.
   * @default the codename's own script
   */
  readonly script?: string;
}

/** The suite every fleet test runs on unless it asks for another. */
export const BASE_IMAGE_SUITE: ImageSuite = { codename: BASE_SUITE, packages: BASE_PACKAGES };

/**
 * Services of BASE_PACKAGES that stand in for the customer's own software on the contract fleet
 * (test/contract). They are not started at boot: the hosts share the machine's network, so every
 * host would fight for the same ports; a test enables them on the hosts that play their role.
 */
export const CUSTOMER_SERVICES: readonly string[] = ['dovecot', 'nginx', 'nsd', 'postfix'];

/** Debian policy 5.6.1: lowercase letters, digits, + - . ; at least two characters, starting alphanumeric. */
const DEBIAN_PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;
/** Codenames and debootstrap's script names: "bookworm", "forky", "sid". */
const DEBIAN_SUITE_NAME = /^[a-z][a-z0-9-]*$/;

/** Bump when the way the image is made changes, so cached images from older recipes are not reused. */
const RECIPE_VERSION = 2;

export function imageCacheRoot(): string {
  return process.env.UPKEEP_TESTBED_CACHE ?? '/var/cache/upkeep-testbed';
}

/** The packages an image is made with: the suite's plus extras, each once, sorted. */
export function imagePackages(extraPackages: readonly string[], suite: ImageSuite = BASE_IMAGE_SUITE): string[] {
  const invalid = [...suite.packages, ...extraPackages].filter((name) => !DEBIAN_PACKAGE_NAME.test(name));
  if (invalid.length > 0) throw new Error(`invalid Debian package names: ${invalid.join(', ')}`);
  return [...new Set([...suite.packages, ...extraPackages])].sort();
}

function checkedSuite(suite: ImageSuite): ImageSuite {
  for (const name of [suite.codename, ...(suite.script === undefined ? [] : [suite.script])]) {
    if (!DEBIAN_SUITE_NAME.test(name)) throw new Error(`invalid Debian suite or debootstrap script name: ${JSON.stringify(name)}`);
  }
  return suite;
}

/** The cache key: everything that goes into the image (the suite's codename among it). */
export function imageKey(extraPackages: readonly string[], suite: ImageSuite = BASE_IMAGE_SUITE): string {
  const packages = imagePackages(extraPackages, suite);
  const { codename, script } = checkedSuite(suite);
  // The script joins the recipe only when given, so the bookworm image keeps its key (and its cache).
  const recipe = JSON.stringify({ recipe: RECIPE_VERSION, suite: codename, ...(script === undefined ? {} : { script }), mirror: testbedMirror(), variant: 'minbase', packages });
  return createHash('sha256').update(recipe).digest('hex').slice(0, 16);
}

/** The major version of systemd installed in an image, from its dpkg database; undefined when it has none. */
export function imageSystemdVersion(image: string): number | undefined {
  const status = join(image, 'var/lib/dpkg/status');
  if (!existsSync(status)) return undefined;
  const stanza = readFileSync(status, 'utf8').split(/\n\n+/).find((s) => /^Package: systemd$/m.test(s) && /^Status: install ok installed$/m.test(s));
  const version = stanza === undefined ? undefined : /^Version: (?:\d+:)?(\d+)/m.exec(stanza)?.[1];
  return version === undefined ? undefined : Number(version);
}

/** Makes the debootstrapped tree fit for sharing between hosts: nothing host-specific may stay in it. */
function prepareForSharing(root: string): void {
  // Every host gets its own host key and machine id in its upper directory before it boots.
  for (const file of readdirSync(join(root, 'etc/ssh'))) {
    if (file.startsWith('ssh_host_')) rmSync(join(root, 'etc/ssh', file));
  }
  writeFileSync(join(root, 'etc/machine-id'), '');
  writeFileSync(join(root, 'etc/hostname'), '');
  rmSync(join(root, 'var/lib/dbus/machine-id'), { force: true });
  // Customer services stay installed but not enabled (see CUSTOMER_SERVICES).
  const units = join(root, 'etc/systemd/system');
  for (const wants of existsSync(units) ? readdirSync(units, { withFileTypes: true }) : []) {
    if (!wants.isDirectory() || !wants.name.endsWith('.wants')) continue;
    const dir = join(units, wants.name);
    for (const link of readdirSync(dir)) {
      if (CUSTOMER_SERVICES.some((service) => link.startsWith(`${service}.`) || link.startsWith(`${service}@`))) rmSync(join(dir, link));
    }
  }
}

async function build(target: string, extraPackages: readonly string[], suite: ImageSuite): Promise<void> {
  const { codename, script } = checkedSuite(suite);
  // debootstrap SUITE TARGET MIRROR [SCRIPT]: a script path, as debootstrap(8) takes it.
  const scriptArgs = script === undefined ? [] : [`/usr/share/debootstrap/scripts/${script}`];
  await runChecked('debootstrap', ['--variant=minbase', `--include=${imagePackages(extraPackages, suite).join(',')}`, codename, target, testbedMirror(), ...scriptArgs], {
    timeoutMs: 30 * 60_000,
  });
  prepareForSharing(target);
}

/** Removes build directories left by builds whose process died (their name carries the builder's pid). */
function removeDeadBuilds(cacheRoot: string, key: string): void {
  for (const entry of readdirSync(cacheRoot)) {
    const match = new RegExp(`^${key}\\.building-(\\d+)$`).exec(entry);
    if (match && !isAlive(Number(match[1]))) removeTree(join(cacheRoot, entry));
  }
}

/**
 * The path of the base image for this suite and package list, building it first when it is not
 * cached. Concurrent callers (several test processes) wait for one build instead of each building.
 */
export async function ensureBaseImage(extraPackages: readonly string[] = [], suite: ImageSuite = BASE_IMAGE_SUITE): Promise<string> {
  const cacheRoot = imageCacheRoot();
  const key = imageKey(extraPackages, suite);
  const image = join(cacheRoot, key);
  if (existsSync(image)) return image;
  const lock = join(cacheRoot, `${key}.lock`);
  while (!tryClaim(lock, { pid: process.pid }, () => removeDeadBuilds(cacheRoot, key))) {
    await sleep(1_000);
  }
  try {
    if (existsSync(image)) return image;
    removeDeadBuilds(cacheRoot, key);
    const building = join(cacheRoot, `${key}.building-${process.pid}`);
    removeTree(building);
    try {
      await build(building, extraPackages, suite);
      renameSync(building, image);
    } finally {
      removeTree(building);
    }
    return image;
  } finally {
    release(lock);
  }
}
