/**
 * A real Debian repository for update tests, built on the machine and served to the test hosts
 * over http on loopback (the hosts share the machine's network, so 127.0.0.1 reaches it).
 *
 * Packages are real .debs built with `dpkg-deb --build` (architecture "all", with optional files
 * and maintainer scripts). Each suite's Packages and Release indexes are written here, in the
 * format apt-ftparchive writes (control fields plus Filename, Size and hashes; Release with the
 * SHA256 of every index): apt-utils on a bookworm machine comes from the security suite with a
 * newer apt, and upgrading the machine's apt for a test is not ours to do.
 * Each suite's Release carries the Origin, Label, Suite and Codename that unattended-upgrades
 * matches its Origins-Pattern against, so a suite made with `security: true` is treated exactly
 * like Debian's security archive (origin=Debian, label=Debian-Security, codename=CODENAME-security)
 * and the other like the regular release (origin=Debian, codename=CODENAME).
 *
 * Usage:
 *   const repo = await startDebRepo();                    // suites bookworm and bookworm-security
 *   await repo.publish({ name: 'upkeep-demo', version: '1.0', suite: 'bookworm' });
 *   await repo.useOn(host);                                // the host's apt sees only this repository
 *   ...
 *   await repo.stop();                                     // in afterAll
 *
 * Hosts are given `[trusted=yes]` sources: the repository is unsigned, and the point of the tests
 * is which versions go where, not apt's signature checks.
 */
import { createHash } from 'node:crypto';
import { chmodSync, createReadStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, normalize, sep } from 'node:path';
import { removeTree } from './remove-tree.ts';
import { runChecked } from './run-command.ts';
import type { TestHost } from './testbed.ts';

export interface DebSuite {
  /** The suite (its directory under dists/), e.g. "bookworm", "bookworm-security" or "testing". */
  readonly name: string;
  /** The Codename field, when it differs from the suite's name (Debian testing: "forky"). @default name */
  readonly codename?: string;
  /** Release fields that make unattended-upgrades see it as Debian's security archive. */
  readonly security: boolean;
}

export interface DebPackage {
  /** Debian package name (lower case, digits, + - .). */
  readonly name: string;
  /** Debian version, e.g. "1.0-1" or "1.0-1+deb12u1". */
  readonly version: string;
  /** The suite it is published in. */
  readonly suite: string;
  /** Files the package installs: absolute path on the host -> content. @default a file naming the version under /usr/share/NAME/version */
  readonly files?: Readonly<Record<string, string>>;
  /** The postinst maintainer script (a shell script body; "#!/bin/sh\nset -e\n" is prepended). */
  readonly postinst?: string;
  /** Depends: field. */
  readonly depends?: string;
}

export interface DebRepo {
  /** Base URL the hosts use, e.g. "http://127.0.0.1:40123". */
  readonly url: string;
  readonly suites: readonly DebSuite[];
  /** Builds the package, puts it into its suite and re-indexes that suite. Resolves to the time it became visible. */
  publish(pkg: DebPackage): Promise<Date>;
  /** The one-line apt source for a suite. */
  sourceLine(suite: string): string;
  /** Points the host's apt at this repository only (every suite), replacing its other sources. */
  useOn(host: TestHost): Promise<void>;
  /** Stops the http server and removes the repository's files. Idempotent. */
  stop(): Promise<void>;
}

export interface DebRepoOptions {
  /** @default bookworm (regular) and bookworm-security (security) */
  readonly suites?: readonly DebSuite[];
}

export const DEFAULT_SUITES: readonly DebSuite[] = [
  { name: 'bookworm', security: false },
  { name: 'bookworm-security', security: true },
];

const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;
const VERSION = /^[0-9][A-Za-z0-9.+~-]*$/;
const SUITE_NAME = /^[a-z0-9][a-z0-9.-]*$/;
/** The source list file useOn writes on a host. */
export const HOST_SOURCES_FILE = '/etc/apt/sources.list.d/upkeep-test-repo.list';

/** Release fields for one suite: what unattended-upgrades' origin patterns see. */
export function releaseFields(suite: DebSuite, architecture: string): Record<string, string> {
  return {
    Origin: 'Debian',
    Label: suite.security ? 'Debian-Security' : 'Debian',
    Suite: suite.name,
    Codename: suite.codename ?? suite.name,
    Architectures: architecture,
    Components: 'main',
    Description: `upkeep test repository: ${suite.security ? 'security fixes' : 'regular release'}`,
  };
}

function controlFile(pkg: DebPackage): string {
  return [
    `Package: ${pkg.name}`,
    `Version: ${pkg.version}`,
    'Architecture: all',
    'Maintainer: upkeep tests <tests@example.invalid>',
    ...(pkg.depends ? [`Depends: ${pkg.depends}`] : []),
    'Section: misc',
    'Priority: optional',
    `Description: upkeep update test package ${pkg.name} ${pkg.version}`,
    '',
  ].join('\n');
}

async function buildDeb(pkg: DebPackage, outFile: string, workDir: string): Promise<void> {
  const root = mkdtempSync(join(workDir, 'build-'));
  try {
    mkdirSync(join(root, 'DEBIAN'), { mode: 0o755 });
    chmodSync(join(root, 'DEBIAN'), 0o755);
    writeFileSync(join(root, 'DEBIAN/control'), controlFile(pkg));
    if (pkg.postinst !== undefined) {
      writeFileSync(join(root, 'DEBIAN/postinst'), `#!/bin/sh\nset -e\n${pkg.postinst}\n`, { mode: 0o755 });
      chmodSync(join(root, 'DEBIAN/postinst'), 0o755);
    }
    const files = pkg.files ?? { [`/usr/share/${pkg.name}/version`]: `${pkg.version}\n` };
    for (const [path, content] of Object.entries(files)) {
      if (!path.startsWith('/') || normalize(path) !== path) throw new Error(`package ${pkg.name}: file path must be absolute and normal: ${path}`);
      mkdirSync(dirname(join(root, path)), { recursive: true, mode: 0o755 });
      writeFileSync(join(root, path), content, { mode: 0o644 });
    }
    await runChecked('dpkg-deb', ['--root-owner-group', '--build', root, outFile], { timeoutMs: 120_000 });
  } finally {
    removeTree(root);
  }
}

function hash(algorithm: 'md5' | 'sha256', data: Buffer): string {
  return createHash(algorithm).update(data).digest('hex');
}

function writeAtomically(path: string, data: Buffer): void {
  writeFileSync(`${path}.tmp`, data);
  renameSync(`${path}.tmp`, path);
}

/** Serves `root` read-only: GET and HEAD of files under it, 404 for anything else. */
function serve(root: string): Promise<Server> {
  const server = createServer((request, response) => {
    const path = normalize(join(root, decodeURIComponent(new URL(request.url ?? '/', 'http://repo').pathname)));
    let size: number | undefined;
    try {
      if (path.startsWith(root + sep)) {
        const stat = statSync(path);
        if (stat.isFile()) size = stat.size;
      }
    } catch {
      // Not there: 404 below.
    }
    if (size === undefined || (request.method !== 'GET' && request.method !== 'HEAD')) {
      response.writeHead(404).end();
      return;
    }
    // No Last-Modified: apt then always fetches the indexes afresh, so a publish is seen at once.
    response.writeHead(200, { 'Content-Length': size, 'Content-Type': 'application/octet-stream', 'Cache-Control': 'no-store' });
    if (request.method === 'HEAD') response.end();
    else createReadStream(path).pipe(response);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

/** Creates an empty repository with its suites and starts serving it on 127.0.0.1 (a free port). */
export async function startDebRepo(options: DebRepoOptions = {}): Promise<DebRepo> {
  const suites = options.suites ?? DEFAULT_SUITES;
  for (const suite of suites) {
    for (const name of [suite.name, suite.codename ?? suite.name]) if (!SUITE_NAME.test(name)) throw new Error(`invalid suite name: ${name}`);
  }
  const architecture = (await runChecked('dpkg', ['--print-architecture'])).stdout.trim();
  const workDir = mkdtempSync(join(tmpdir(), 'upkeep-deb-repo-'));
  const root = join(workDir, 'www');
  const index = async (suite: DebSuite): Promise<void> => {
    const dist = join(root, 'dists', suite.name);
    const packagesPath = `main/binary-${architecture}/Packages`;
    mkdirSync(dirname(join(dist, packagesPath)), { recursive: true });
    const pool = join('pool', suite.name);
    const stanzas: string[] = [];
    for (const file of readdirSync(join(root, pool)).filter((f) => f.endsWith('.deb')).sort()) {
      const deb = readFileSync(join(root, pool, file));
      const control = (await runChecked('dpkg-deb', ['--field', join(root, pool, file)], { timeoutMs: 60_000 })).stdout.trimEnd();
      stanzas.push(`${control}\nFilename: ${pool}/${file}\nSize: ${deb.length}\nMD5sum: ${hash('md5', deb)}\nSHA256: ${hash('sha256', deb)}\n`);
    }
    const packages = Buffer.from(stanzas.join('\n'));
    writeAtomically(join(dist, packagesPath), packages);
    const fields = Object.entries(releaseFields(suite, architecture)).map(([key, value]) => `${key}: ${value}\n`).join('');
    const release =
      fields +
      `Date: ${new Date().toUTCString().replace('GMT', 'UTC')}\n` +
      `MD5Sum:\n ${hash('md5', packages)} ${packages.length} ${packagesPath}\n` +
      `SHA256:\n ${hash('sha256', packages)} ${packages.length} ${packagesPath}\n`;
    // Written last: apt never sees a Release whose checksums do not match its Packages yet.
    writeAtomically(join(dist, 'Release'), Buffer.from(release));
  };
  for (const suite of suites) {
    mkdirSync(join(root, 'pool', suite.name), { recursive: true });
    await index(suite);
  }
  const server = await serve(root);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let stopped = false;
  const suiteNamed = (name: string): DebSuite => {
    const suite = suites.find((s) => s.name === name);
    if (!suite) throw new Error(`no suite "${name}" in the test repository (suites: ${suites.map((s) => s.name).join(', ')})`);
    return suite;
  };
  const sourceLine = (name: string) => `deb [trusted=yes] ${url} ${suiteNamed(name).name} main`;
  return {
    url,
    suites,
    sourceLine,
    async publish(pkg) {
      if (!PACKAGE_NAME.test(pkg.name)) throw new Error(`invalid package name: ${pkg.name}`);
      if (!VERSION.test(pkg.version)) throw new Error(`invalid version: ${pkg.version}`);
      const suite = suiteNamed(pkg.suite);
      await buildDeb(pkg, join(root, 'pool', suite.name, `${pkg.name}_${pkg.version}_all.deb`), workDir);
      await index(suite);
      return new Date();
    },
    async useOn(host) {
      const sources = `${suites.map((s) => sourceLine(s.name)).join('\n')}\n`;
      const result = await host.ssh(
        // The base image's own mirror would make every apt-get update slow and the versions
        // on offer unpredictable: the test repository is the host's only archive.
        `set -e; : > /etc/apt/sources.list; rm -f /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; cat > ${HOST_SOURCES_FILE}`,
        { input: sources },
      );
      if (result.exitCode !== 0) throw new Error(`${host.name}: cannot point apt at the test repository (exit ${result.exitCode}): ${result.stderr.trim()}`);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      removeTree(workDir);
    },
  };
}
