// Every program outside Node.js that the tests and the runtime programs (lib/runtime) call, by the
// Debian package that brings it and where it must exist:
// - "machine": the machine running `npm test` (a test spawns it, or runs a runtime program that
//   calls it); test/setup.sh installs it unless a fresh machine has it already;
// - "hosts": the test hosts booted by test/fleet (test/fleet/base-image.ts installs it there).
// A package on neither is called by code that no test here runs for real; it says why.
// test/programs.test.ts checks this list against the code, the setup script and dpkg.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export type Where = 'machine' | 'hosts';

export interface PackageUse {
  readonly programs: readonly string[];
  readonly on: readonly Where[];
  /** Why no test here runs these programs for real (only for packages on neither). */
  readonly notRunHere?: string;
}

export const PACKAGES = {
  // Essential packages: part of every Debian system, the fresh machine and the test hosts alike.
  coreutils: {
    programs: ['base64', 'basename', 'cat', 'chmod', 'chown', 'chroot', 'comm', 'cp', 'cut', 'date', 'dd', 'df', 'dirname', 'head', 'id', 'mkdir', 'mktemp', 'mv', 'od', 'paste', 'readlink', 'rm', 'sha256sum', 'shuf', 'sleep', 'sort', 'stat', 'sync', 'tail', 'tee', 'timeout', 'touch', 'tr', 'true', 'wc'],
    on: ['machine', 'hosts'],
  },
  dash: { programs: ['sh'], on: ['machine', 'hosts'] },
  bash: { programs: ['bash'], on: ['machine', 'hosts'] },
  sed: { programs: ['sed'], on: ['machine', 'hosts'] },
  grep: { programs: ['grep'], on: ['machine', 'hosts'] },
  findutils: { programs: ['find'], on: ['machine', 'hosts'] },
  mawk: { programs: ['awk'], on: ['machine', 'hosts'] },
  'util-linux': { programs: ['findmnt', 'flock', 'mountpoint', 'setpriv', 'setsid', 'unshare'], on: ['machine', 'hosts'] },
  tar: { programs: ['tar'], on: ['machine', 'hosts'] },
  // getconf CLK_TCK: reboot-ready.sh reads PID 1's start in clock ticks.
  'libc-bin': { programs: ['getconf'], on: ['machine', 'hosts'] },
  // A backup host mounts its volume (backup-volume.sh); the volume's stand-in is mounted on a test host.
  mount: { programs: ['mount', 'umount'], on: ['machine', 'hosts'] },
  bsdutils: { programs: ['logger'], on: ['machine', 'hosts'] },
  hostname: { programs: ['hostname'], on: ['machine', 'hosts'] },
  dpkg: { programs: ['dpkg', 'dpkg-deb', 'dpkg-query'], on: ['machine', 'hosts'] },
  apt: { programs: ['apt-config', 'apt-get', 'apt-mark'], on: ['machine', 'hosts'] },
  // The toolchain every machine of this kind comes with.
  nodejs: { programs: ['node', 'npm'], on: ['machine'] },
  python3: { programs: ['python3'], on: ['machine', 'hosts'] },
  git: { programs: ['git'], on: ['machine'] },
  // Installed by test/setup.sh on the machine, and by the base image on the hosts.
  systemd: { programs: ['journalctl', 'systemctl', 'systemd-analyze', 'systemd-run'], on: ['machine', 'hosts'] },
  'systemd-container': { programs: ['systemd-nspawn'], on: ['machine'] },
  debootstrap: { programs: ['debootstrap'], on: ['machine'] },
  gpgv: { programs: ['gpgv'], on: ['machine'] },
  'openssh-client': { programs: ['ssh', 'ssh-keygen', 'ssh-keyscan'], on: ['machine', 'hosts'] },
  restic: { programs: ['restic'], on: ['machine', 'hosts'] },
  // The backup host serves each client's repository append-only (rclone serve restic --stdio).
  rclone: { programs: ['rclone'], on: ['hosts'] },
  curl: { programs: ['curl'], on: ['machine', 'hosts'] },
  openssl: { programs: ['openssl'], on: ['machine'] },
  'bind9-dnsutils': { programs: ['dig'], on: ['machine'] },
  // Alert routes: a real Alertmanager receives the alerts of test hosts (test/fleet/alert-routes.test.ts).
  'prometheus-alertmanager': { programs: ['prometheus-alertmanager'], on: ['machine'] },
  // promtool parses the metrics file hosts write for node_exporter (test/fleet/alert-routes.test.ts).
  prometheus: { programs: ['promtool'], on: ['machine'] },
  shellcheck: { programs: ['shellcheck'], on: ['machine'] },
  // Loads the `upkeep status` HTML page as a browser does (test/fleet/status.test.ts).
  chromium: { programs: ['chromium'], on: ['machine'] },
  // Runs the filters the example pipelines give gh (test/ci/ci-scripts.test.ts).
  jq: { programs: ['jq'], on: ['machine'] },
  'unattended-upgrades': { programs: ['unattended-upgrade'], on: ['hosts'] },
  // Called by runtime programs on real servers; the tests give FAKEs or have no such host.
  smartmontools: { programs: ['smartctl'], on: [], notRunHere: 'no physical disk here: check-smart.sh is tested with a FAKE smartctl' },
  needrestart: { programs: ['needrestart'], on: [], notRunHere: 'not in the test hosts\' image: updates.sh tells disruptive updates by /var/run/reboot-required.pkgs there; needrestart\'s list of services to restart is read where a host has it' },
  nftables: { programs: ['nft'], on: [], notRunHere: 'no firewall in a test: mitigations.sh is tested with a FAKE nft' },
  dnf: { programs: ['dnf'], on: [], notRunHere: 'no Fedora/RHEL host can be booted here (Debian packages only)' },
  'dnf-automatic': { programs: ['dnf-automatic'], on: [], notRunHere: 'no Fedora/RHEL host can be booted here' },
  'dnf-utils': { programs: ['needs-restarting'], on: [], notRunHere: 'no Fedora/RHEL host can be booted here' },
  rpm: { programs: ['rpm'], on: [], notRunHere: 'no Fedora/RHEL host can be booted here' },
  gh: { programs: ['gh'], on: [], notRunHere: "GitHub's CLI talks to GitHub: the example pipelines' scripts (examples/ci) are tested with a FAKE gh" },
  policycoreutils: { programs: ['restorecon'], on: [], notRunHere: 'SELinux hosts only (Fedora/RHEL): rotate-host-key.sh relabels the new host key there' },
} as const satisfies Record<string, PackageUse>;

export type PackageName = keyof typeof PACKAGES;
type ProgramOf<P> = P extends { readonly programs: readonly (infer N)[] } ? N : never;
/** A program that a test may need on the machine running it. */
export type MachineProgram = { [P in PackageName]: (typeof PACKAGES)[P] extends { on: readonly ['machine', ...unknown[]] } ? ProgramOf<(typeof PACKAGES)[P]> : never }[PackageName];

/**
 * Packages test/setup.sh installs besides those of the list: data, not programs, used by a
 * program of the list.
 */
export const SUPPORT_PACKAGES: Readonly<Record<string, string>> = {
  'debian-archive-keyring': 'debootstrap verifies the Debian archive with it',
};

/**
 * What a fresh machine of this project's kind has besides a minimal Debian system (the packages
 * of priority "required"): Node.js with npm, python3, git, make and g++.
 */
export const FRESH_MACHINE_TOOLCHAIN: readonly string[] = ['nodejs', 'python3', 'git', 'make', 'g++'];

/** The command that installs every program the tests use. */
export const SETUP_COMMAND = 'sh test/setup.sh (as root)';

/** The package that brings `program`, per the list. */
export function packageOf(program: string): PackageName | undefined {
  return (Object.keys(PACKAGES) as PackageName[]).find((name) => (PACKAGES[name].programs as readonly string[]).includes(program));
}

/** Where `program` is on PATH (or in the sbin directories, where Debian keeps admin tools). */
export function whichProgram(program: string, path = process.env.PATH ?? ''): string | undefined {
  return [...path.split(delimiter), '/usr/sbin', '/sbin']
    .filter((dir) => dir !== '')
    .map((dir) => join(dir, program))
    .find((file) => {
      try {
        accessSync(file, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
}

export function onPath(program: string, path = process.env.PATH ?? ''): boolean {
  return whichProgram(program, path) !== undefined;
}

/** The programs of `programs` that are not installed here. */
export function missingPrograms(programs: readonly MachineProgram[], path = process.env.PATH ?? ''): MachineProgram[] {
  return programs.filter((program) => !onPath(program, path));
}

/**
 * Whether the tests of `what` can run here, for `describe.skipIf(!programsAvailable(...))`. When a
 * program is missing they are skipped with one loud line naming it and the command that installs
 * them all; with UPKEEP_REQUIRE_FLEET=1 (CI) the missing program fails the run instead.
 */
export function programsAvailable(what: string, programs: readonly MachineProgram[], env: NodeJS.ProcessEnv = process.env): boolean {
  const missing = missingPrograms(programs, env.PATH ?? '');
  if (missing.length === 0) return true;
  const reason = `missing ${missing.join(', ')}; install everything the tests use with: ${SETUP_COMMAND}`;
  if (env.UPKEEP_REQUIRE_FLEET === '1') throw new Error(`UPKEEP_REQUIRE_FLEET=1 but ${what} cannot run here: ${reason}`);
  console.warn(`!!! SKIPPING ${what}: ${reason}`);
  return false;
}
