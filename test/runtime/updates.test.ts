import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { renderEnvFile } from '../../lib/compile/env-file.ts';
import { windowEnv } from '../../lib/compile/updates.ts';
import { sundayWindow } from '../fixtures/resolved-fleet.ts';
import { startDebRepo, type DebRepo } from '../fleet/deb-repo.ts';
import { whichProgram } from '../programs.ts';
import { runScript, runScriptAsync, tempDir } from './run-script.ts';

/** FAKE commands (no systemd as PID 1, no firewall here) that record their arguments and stdin. */
function fakes(dir: string, names: string[]): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  for (const name of names) {
    writeFileSync(join(bin, name), `#!/bin/sh\necho "${name} $*" >> '${dir}/calls'\nif [ ! -t 0 ]; then cat >> '${dir}/stdin'; fi\n`);
    chmodSync(join(bin, name), 0o755);
  }
  return `${bin}:${process.env.PATH}`;
}
const read = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : '');

describe('reboot.sh', () => {
  function host(policy: string) {
    const dir = tempDir();
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc/window.env'), windowEnv(sundayWindow));
    writeFileSync(join(dir, 'etc/updates.env'), renderEnvFile('test', { UPKEEP_PACKAGE_FAMILY: 'apt', UPKEEP_REBOOT: policy }));
    const PATH = fakes(dir, ['systemctl']);
    const at = (utc: string) =>
      runScript('reboot.sh', [], { PATH, UPKEEP_CONFIG_DIR: join(dir, 'etc'), UPKEEP_STATE_DIR: join(dir, 'state'), UPKEEP_NOW: String(Date.parse(utc) / 1000) });
    const routineRan = (date: string) => {
      mkdirSync(join(dir, 'state'), { recursive: true });
      writeFileSync(join(dir, 'state/routine-last-opening'), `${date}\n`);
    };
    return { at, routineRan, etc: join(dir, 'etc'), calls: () => read(join(dir, 'calls')) };
  }

  it('with "always", reboots once per window opening, after its routine updates, never outside the window (FAKE systemctl)', () => {
    const h = host('always');
    h.routineRan('2026-11-01');
    expect(h.at('2026-11-07T01:30:00Z').stdout).toContain('outside the maintenance window');
    expect(h.calls()).toBe('');
    expect(h.at('2026-11-08T01:05:00Z').stdout).toContain('waiting for the routine updates of the window that opened 2026-11-08');
    expect(h.calls()).toBe('');
    h.routineRan('2026-11-08');
    expect(h.at('2026-11-08T01:15:00Z').stdout).toContain('rebooting in the window that opened 2026-11-08');
    expect(h.calls()).toBe('systemctl reboot\n');
    expect(h.at('2026-11-08T01:30:00Z').stdout).toContain('already rebooted');
    expect(h.calls()).toBe('systemctl reboot\n');
    h.routineRan('2026-11-15');
    h.at('2026-11-15T01:00:00Z');
    expect(h.calls()).toBe('systemctl reboot\nsystemctl reboot\n');
  });

  it('does not reboot on a blackout date even with "always"', () => {
    const h = host('always');
    h.routineRan('2026-12-20');
    expect(h.at('2026-12-20T01:30:00Z').status).toBe(0);
    expect(h.calls()).toBe('');
  });

  it('fails, without rebooting, when the window configuration is broken', () => {
    const h = host('always');
    writeFileSync(join(h.etc, 'window.env'), "UPKEEP_WINDOW_DAYS='sun'\n");
    const run = h.at('2026-11-08T01:15:00Z');
    expect(run.status).toBe(255);
    expect(h.calls()).toBe('');
  });

  it('with "never", does nothing inside the window', () => {
    const h = host('never');
    h.routineRan('2026-11-08');
    expect(h.at('2026-11-08T01:15:00Z').status).toBe(0);
    expect(h.calls()).toBe('');
  });
});

describe('mitigations.sh with the real dpkg version comparison', () => {
  it('applies each mitigation while the fix is missing and reverts only what it applied once the fix is installed', () => {
    const dir = tempDir();
    const etc = join(dir, 'etc');
    mkdirSync(join(etc, 'mitigations'), { recursive: true });
    writeFileSync(join(etc, 'updates.env'), renderEnvFile('test', { UPKEEP_PACKAGE_FAMILY: 'apt', UPKEEP_REBOOT: 'never' }));
    writeFileSync(join(etc, 'mitigations/M-3.content'), 'feature off\n');
    const dropIn = join(dir, 'conf.d', 'off.conf');
    // bash is installed here; "99" is newer than any bash, "0.1" older.
    const list = (fixedIn: string) =>
      [`M-1\tbash\t${fixedIn}\tmask-unit\tcups.service`, `M-2\tbash\t${fixedIn}\tfirewall-port\t2222/tcp`, `M-3\tbash\t${fixedIn}\tdrop-in\t${dropIn}`, 'M-4\tno-such-package\t-\tstop-unit\tfoo.service'].join('\n') + '\n';
    const env = { PATH: fakes(dir, ['systemctl', 'nft']), UPKEEP_CONFIG_DIR: etc, UPKEEP_STATE_DIR: join(dir, 'state') };

    writeFileSync(join(etc, 'mitigations.list'), list('99'));
    const applied = runScript('mitigations.sh', [], env);
    expect(applied.stderr).toBe('');
    expect(applied.status).toBe(0);
    expect(read(join(dir, 'calls'))).toBe('systemctl mask --now cups.service\nsystemctl stop foo.service\nnft -f -\n');
    expect(read(join(dir, 'stdin'))).toContain('tcp dport 2222 drop;');
    expect(read(dropIn)).toBe('feature off\n');

    writeFileSync(join(dir, 'calls'), '');
    writeFileSync(join(dir, 'stdin'), '');
    writeFileSync(join(etc, 'mitigations.list'), list('0.1'));
    const reverted = runScript('mitigations.sh', [], env);
    expect(reverted.status).toBe(0);
    expect(reverted.stdout).toContain('M-1: bash is at 0.1 or later; reverting mask-unit');
    expect(read(join(dir, 'calls'))).toBe('systemctl unmask cups.service\nsystemctl stop foo.service\nnft -f -\n');
    expect(read(join(dir, 'stdin'))).not.toContain('dport');
    expect(existsSync(dropIn)).toBe(false);
  });
});

describe('mitigations.sh reverts what the policy no longer declares, and verify reports what is not in effect', () => {
  function host() {
    const dir = tempDir();
    const etc = join(dir, 'etc');
    mkdirSync(join(etc, 'mitigations'), { recursive: true });
    writeFileSync(join(etc, 'updates.env'), renderEnvFile('test', { UPKEEP_PACKAGE_FAMILY: 'apt', UPKEEP_REBOOT: 'never' }));
    writeFileSync(join(etc, 'mitigations/M-3.content'), 'feature off\n');
    const dropIn = join(dir, 'conf.d', 'off.conf');
    const lines = { 'M-1': 'M-1\tbash\t99\tstop-unit\tvulnd.service', 'M-3': `M-3\tbash\t99\tdrop-in\t${dropIn}` };
    const declare = (...ids: (keyof typeof lines)[]) => writeFileSync(join(etc, 'mitigations.list'), ids.map((id) => `${lines[id]}\n`).join(''));
    // FAKE systemctl: records its calls; "is-active" answers from a file the test sets, "is-enabled" says enabled.
    const PATH = fakes(dir, ['nft']);
    writeFileSync(join(dir, 'bin/systemctl'), `#!/bin/sh\necho "systemctl $*" >> '${dir}/calls'\ncase \"$*\" in *is-active*) test -e '${dir}/active' ;; *is-enabled*) echo enabled ;; esac\n`);
    chmodSync(join(dir, 'bin/systemctl'), 0o755);
    const env = { PATH, UPKEEP_CONFIG_DIR: etc, UPKEEP_STATE_DIR: join(dir, 'state') };
    return {
      dir,
      dropIn,
      declare,
      running: (yes: boolean) => (yes ? writeFileSync(join(dir, 'active'), '') : rmSync(join(dir, 'active'), { force: true })),
      apply: () => runScript('mitigations.sh', [], env),
      verify: () => runScript('mitigations.sh', ['verify'], env),
      calls: () => read(join(dir, 'calls')),
    };
  }

  it('GIVEN two applied mitigations, WHEN one is removed from the list, THEN only that one is reverted and forgotten', () => {
    const h = host();
    h.declare('M-1', 'M-3');
    expect(h.apply().status).toBe(0);
    expect(read(h.dropIn)).toBe('feature off\n');
    h.declare('M-1');
    writeFileSync(join(h.dir, 'calls'), '');
    const run = h.apply();
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`M-3: no longer declared; reverting drop-in ${h.dropIn}`);
    expect(existsSync(h.dropIn)).toBe(false);
    expect(existsSync(join(h.dir, 'state/mitigations/M-3'))).toBe(false);
    expect(h.calls()).toBe('systemctl stop vulnd.service\nnft -f -\n');
  });

  it('GIVEN the list is emptied, THEN a stopped unit is started again (it is enabled) and nothing stays recorded', () => {
    const h = host();
    h.declare('M-1');
    expect(h.apply().status).toBe(0);
    h.declare();
    writeFileSync(join(h.dir, 'calls'), '');
    const run = h.apply();
    expect(run.status).toBe(0);
    expect(h.calls()).toBe('systemctl -q is-enabled vulnd.service\nsystemctl start vulnd.service\nnft -f -\n');
    expect(readdirSync(join(h.dir, 'state/mitigations'))).toEqual([]);
  });

  it('verify fails (exit 2) naming each mitigation not in effect or not reverted, and passes once they are', () => {
    const h = host();
    h.declare('M-1', 'M-3');
    h.running(true);
    const before = h.verify();
    expect(before.status).toBe(2);
    expect(before.stdout).toContain('M-1: vulnd.service is running');
    expect(before.stdout).toContain(`M-3: ${h.dropIn} does not hold the mitigation's content`);
    expect(h.apply().status).toBe(0);
    h.running(false);
    expect(h.verify().status).toBe(0);
    // Removed from the policy but not yet reverted: verify names it.
    h.declare('M-1');
    const stale = h.verify();
    expect(stale.status).toBe(2);
    expect(stale.stdout).toContain('M-3: no longer declared but drop-in');
    // verify changes nothing.
    expect(read(h.dropIn)).toBe('feature off\n');
  });
});

describe('updates.sh on an apt host (FAKE apt-get, dpkg-query and unattended-upgrade: nothing is installed here)', () => {
  /**
   * A host whose installed packages are the file "installed" ("name version" lines); the FAKE
   * apt-get offers the "Inst" lines of the file "offered" to a simulation (at the versions it
   * names as NAME=VERSION), prints the file
   * "update-output" (when there is one) on update and records every call;
   * the FAKE unattended-upgrade installs "upgrade" ("name version" lines) when it exists.
   */
  function host(role: 'staging' | 'production', installed: string, channel: 'stable' | 'rolling' = 'stable', settings: Record<string, string> = {}) {
    const dir = tempDir();
    mkdirSync(join(dir, 'etc'));
    writeFileSync(
      join(dir, 'etc/updates.env'),
      renderEnvFile('test', { UPKEEP_PACKAGE_FAMILY: 'apt', UPKEEP_REBOOT: 'when-needed', UPKEEP_UPDATE_ROLE: role, ...(channel === 'rolling' ? { UPKEEP_UPDATE_CHANNEL: channel } : {}), ...settings }),
    );
    writeFileSync(join(dir, 'etc/window.env'), windowEnv(sundayWindow));
    writeFileSync(join(dir, 'installed'), installed);
    writeFileSync(join(dir, 'offered'), '');
    mkdirSync(join(dir, 'bin'));
    const fake = (name: string, body: string) => {
      writeFileSync(join(dir, 'bin', name), `#!/bin/sh\n${body}\n`);
      chmodSync(join(dir, 'bin', name), 0o755);
    };
    // A simulation takes the version of a package named as NAME=VERSION, as apt does.
    const simulate = `awk -v args=" $* " 'BEGIN { n = split(args, a, " "); for (i = 1; i <= n; i++) if (split(a[i], kv, "=") == 2) pin[kv[1]] = kv[2] } /^Inst / && ($2 in pin) { sub(/\\([^ ]*/, "(" pin[$2]) } { print }' '${dir}/offered'`;
    fake('apt-get', `echo "apt-get $* APT_CONFIG=\${APT_CONFIG:-}" >> '${dir}/calls'\ncase "$*" in -s*) ${simulate} ;; *' update') [ ! -f '${dir}/update-output' ] || cat '${dir}/update-output' ;; esac`);
    fake('apt-mark', `echo "apt-mark $*" >> '${dir}/calls'`);
    fake('dpkg-query', `awk '{ print "ii ", $1, $2 }' '${dir}/installed'`);
    fake('unattended-upgrade', `echo "unattended-upgrade $* APT_CONFIG=\${APT_CONFIG:-}" >> '${dir}/calls'\nif [ -f '${dir}/upgrade' ]; then awk 'NR == FNR { v[$1] = $2; next } { print $1, ($1 in v ? v[$1] : $2) }' '${dir}/upgrade' '${dir}/installed' > '${dir}/installed.new' && mv '${dir}/installed.new' '${dir}/installed'; fi`);
    const run = (args: string[], options: { utc?: string; input?: string } = {}) =>
      runScript('updates.sh', args, {
        PATH: `${join(dir, 'bin')}:${process.env.PATH}`,
        UPKEEP_CONFIG_DIR: join(dir, 'etc'),
        UPKEEP_STATE_DIR: join(dir, 'state'),
        UPKEEP_REBOOT_REQUIRED_PKGS: join(dir, 'reboot-required.pkgs'),
        UPKEEP_NOW: String(Date.parse(options.utc ?? '2026-11-08T01:30:00Z') / 1000),
        APT_CONFIG: '',
      }, options.input);
    return {
      dir,
      run,
      offer: (lines: string) => writeFileSync(join(dir, 'offered'), lines),
      calls: () => read(join(dir, 'calls')),
      state: (name: string) => read(join(dir, 'state', name)),
    };
  }

  it('staging: runs the security pass with the security-only apt configuration and records what it installed', () => {
    const h = host('staging', 'demo 1.0\nkernel 1.0\n');
    h.offer('Inst demo [1.0] (1.1 Debian-Security:12/bookworm-security [all])\nInst kernel [1.0] (2.0 Debian:12/bookworm [all])\n');
    writeFileSync(join(h.dir, 'upgrade'), 'demo 1.1\n');
    const run = h.run(['security']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(h.calls()).toBe(
      'apt-get -q -o APT::Update::Error-Mode=any update APT_CONFIG=\n' +
        'apt-get -s -o Debug::NoLocking=1 -o APT::Get::Upgrade-Allow-New=true upgrade APT_CONFIG=\n' +
        `unattended-upgrade -v APT_CONFIG=${h.dir}/etc/apt/security.conf\n` +
        'apt-get -s -o Debug::NoLocking=1 -o APT::Get::Upgrade-Allow-New=true upgrade APT_CONFIG=\n',
    );
    const now = Date.parse('2026-11-08T01:30:00Z') / 1000;
    expect(h.state('updates/staged')).toBe(`demo 1.1 security small ${now}\n`);
    // An hour later `upkeep update` reads it with its age.
    expect(h.run(['staged'], { utc: '2026-11-08T02:30:00Z' }).stdout).toBe('demo 1.1 security small 3600\n');
  });

  it('rolling channel: the security run takes every update, and every update counts as a security fix', () => {
    const h = host('staging', 'demo 1.0\n', 'rolling');
    h.offer('Inst demo [1.0] (1.1 Debian:testing/testing [all])\n');
    writeFileSync(join(h.dir, 'upgrade'), 'demo 1.1\n');
    expect(h.run(['security']).status).toBe(0);
    expect(h.calls()).toContain('unattended-upgrade -v APT_CONFIG=\n');
    expect(h.calls()).not.toContain('security.conf');
    const now = Date.parse('2026-11-08T01:30:00Z') / 1000;
    expect(h.state('updates/staged')).toBe(`demo 1.1 security small ${now}\n`);
    const production = host('production', 'demo 1.0\n', 'rolling');
    production.offer('Inst demo [1.0] (1.1 Debian:testing/testing [all])\n');
    expect(production.run(['security']).status).toBe(0);
    expect(production.state('updates/pending')).toBe(`demo 1.1 ${now} security\n`);
  });

  it('records when each update was first seen, keeps that time while it is pending, and forgets it once installed', () => {
    const h = host('production', 'demo 1.0\n');
    h.offer('Inst demo [1.0] (1.1 Debian-Security:12/bookworm-security [all])\n');
    expect(h.run(['security'], { utc: '2026-11-08T01:00:00Z' }).status).toBe(0);
    h.offer('Inst demo [1.0] (1.2 Debian-Security:12/bookworm-security [all])\nInst other [1] (2 Debian:12/bookworm [all])\n');
    expect(h.run(['security'], { utc: '2026-11-08T05:00:00Z' }).status).toBe(0);
    const first = Date.parse('2026-11-08T01:00:00Z') / 1000;
    const later = Date.parse('2026-11-08T05:00:00Z') / 1000;
    expect(h.state('updates/pending')).toBe(`demo 1.2 ${first} security\nother 2 ${later} routine\n`);
    h.offer('');
    expect(h.run(['security']).status).toBe(0);
    expect(h.state('updates/pending')).toBe('');
  });

  it('production: installs nothing from the archive on its own, only promoted versions', () => {
    const h = host('production', 'demo 1.0\n');
    h.offer('Inst demo [1.0] (1.1 Debian-Security:12/bookworm-security [all])\n');
    expect(h.run(['security']).status).toBe(0);
    expect(h.run(['routine']).status).toBe(0);
    expect(h.calls()).not.toContain('unattended-upgrade');
    expect(h.calls()).not.toContain(' install ');
  });

  it('production: promote installs exactly the promoted small versions, leaves disruptive ones for the window, and skips what a security wave must not take', () => {
    const h = host('production', 'demo 1.0\nkernel 1.0\nlib 1.0\nnew-to-host 0\n');
    const manifest = 'demo 1.1 security small\nkernel 2.0 security reboot\nlib 1.5 routine small\nabsent 3.0 security small\n';
    // Outside the window (Saturday 01:30 UTC; the window is Sunday 01:00-04:00 Berlin).
    const outside = h.run(['promote', 'security'], { utc: '2026-11-07T01:30:00Z', input: manifest });
    expect(outside.stderr).not.toContain('updates:');
    expect(outside.status).toBe(0);
    expect(outside.stdout).toBe('deferred kernel 2.0 reboot\ninstalled demo 1.1\n');
    expect(h.calls()).toContain('apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold demo=1.1 APT_CONFIG=');
    expect(h.state('updates/promoted')).toBe('absent 3.0 small\ndemo 1.1 small\nkernel 2.0 reboot\n');
    // Inside the window the routine run installs the disruptive one (and demo again: the FAKE installs nothing).
    const inside = h.run(['routine'], { utc: '2026-11-08T01:30:00Z' });
    expect(inside.status).toBe(0);
    expect(inside.stdout).toContain('installed kernel 2.0');
    expect(h.calls()).toContain('demo=1.1 kernel=2.0 APT_CONFIG=');
  });

  it('production: a held package is not installed by a promotion, and the output says so', () => {
    const h = host('production', 'postgresql-15 15.1\ndemo 1.0\n', 'stable', { UPKEEP_HOLD: 'postgresql-15 nginx' });
    const run = h.run(['promote', 'security'], { input: 'postgresql-15 15.2 security small\ndemo 1.1 security small\n' });
    expect(run.stderr).not.toContain('updates:');
    expect(run.status).toBe(0);
    expect(run.stdout).toBe('held postgresql-15 15.2\ninstalled demo 1.1\n');
    expect(h.calls()).toMatch(/apt-get install -y -q .* demo=1\.1 APT_CONFIG=/);
    expect(h.calls()).not.toContain('postgresql-15=');
    // Nor by the timers' runs, which install what was promoted.
    const routine = h.run(['routine']);
    expect(routine.stdout).toContain('held postgresql-15 15.2\n');
    expect(h.calls()).not.toContain('postgresql-15=');
  });

  it('counts an update that needs a package the host lacks (held back by a plain upgrade) as pending, not the new package itself', () => {
    const h = host('production', 'demo 1.0\n', 'rolling');
    h.offer('Inst libdemo2 (2.0 Debian:testing [amd64])\nInst demo [1.0] (1.1 Debian:testing [all])\n');
    expect(h.run(['security']).status).toBe(0);
    expect(h.calls()).toContain('apt-get -s -o Debug::NoLocking=1 -o APT::Get::Upgrade-Allow-New=true upgrade');
    expect(h.state('updates/pending')).toBe(`demo 1.1 ${Date.parse('2026-11-08T01:30:00Z') / 1000} security\n`);
  });

  it('production: installs the packages a promoted update needs at the versions staging ran, as dependencies; installs nothing when staging ran none', () => {
    const h = host('production', 'demo 1.0\n', 'rolling');
    // What apt would do for demo=1.1: add libdemo2, whose newest version in the archive is 2.1.
    h.offer('Inst libdemo2 (2.1 Debian:testing [amd64])\nInst demo [1.0] (1.1 Debian:testing [all])\n');
    const promoted = h.run(['promote', 'security'], { input: 'demo 1.1 security small\nlibdemo2 2.0 security small\n' });
    expect(promoted.stderr).not.toContain('updates:');
    expect(promoted.status).toBe(0);
    expect(promoted.stdout).toBe('installed demo 1.1\n');
    expect(h.calls()).toContain('apt-mark showmanual libdemo2\napt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold demo=1.1 libdemo2=2.0 APT_CONFIG=\napt-mark auto libdemo2\n');

    const lacking = host('production', 'demo 1.0\n', 'rolling');
    lacking.offer('Inst libdemo2 (2.1 Debian:testing [amd64])\nInst demo [1.0] (1.1 Debian:testing [all])\n');
    const refused = lacking.run(['promote', 'security'], { input: 'demo 1.1 security small\n' });
    expect(refused.status).toBe(1);
    expect(refused.stdout).toBe('refused demo 1.1: it would install libdemo2 2.1, and no version of libdemo2 has been promoted\n');
    expect(refused.stderr).toContain('updates: promoted demo 1.1 not installed: it would install libdemo2 2.1, and no version of libdemo2 has been promoted\n');
    expect(lacking.calls()).not.toContain('apt-get install -y');
  });

  it('GIVEN an apt that only warns when it cannot fetch (older than 2.1.16), THEN the run fails and notes why; the next good run clears it', () => {
    const h = host('production', 'demo 1.0\n');
    h.offer('Inst demo [1.0] (1.1 Debian-Security:12/bookworm-security [all])\n');
    writeFileSync(join(h.dir, 'update-output'), 'Err:1 http://deb.debian.org/debian-security bookworm-security InRelease\nW: Failed to fetch http://deb.debian.org/debian-security/dists/bookworm-security/InRelease  Temporary failure resolving \'deb.debian.org\'\nW: Some index files failed to download. They have been ignored, or old ones used instead.\n');
    const failed = h.run(['security'], { utc: '2026-11-08T01:00:00Z' });
    expect(failed.status).toBe(1);
    expect(failed.stderr).toContain("updates: apt-get update could not refresh the package lists (exit 0: W: Failed to fetch http://deb.debian.org/debian-security/dists/bookworm-security/InRelease  Temporary failure resolving 'deb.debian.org'); this run went on with the lists of the last refresh\n");
    // It went on: what the old lists offer is recorded; the archive was not read.
    expect(h.state('updates/pending')).toBe(`demo 1.1 ${Date.parse('2026-11-08T01:00:00Z') / 1000} security\n`);
    expect(h.state('updates/archive-read')).toBe('');
    expect(h.state('updates/archive-problem')).toMatch(new RegExp(`^${Date.parse('2026-11-08T01:00:00Z') / 1000} apt-get update could not refresh`));
    rmSync(join(h.dir, 'update-output'));
    expect(h.run(['security'], { utc: '2026-11-08T02:00:00Z' }).status).toBe(0);
    expect(h.state('updates/archive-read')).toBe(`${Date.parse('2026-11-08T02:00:00Z') / 1000}\n`);
    expect(existsSync(join(h.dir, 'state/updates/archive-problem'))).toBe(false);
  });

  it('production: refuses a promoted update that would make apt remove a package', () => {
    const h = host('production', 'demo 1.0\nold-demo-plugin 1\n');
    h.offer('Remv old-demo-plugin [1]\nInst demo [1.0] (1.1 Debian-Security:12/bookworm-security [all])\n');
    const run = h.run(['promote', 'security'], { input: 'demo 1.1 security small\n' });
    expect(run.stdout).toBe('refused demo 1.1: it would remove old-demo-plugin\n');
    expect(run.status).toBe(1);
    expect(h.calls()).not.toContain('apt-get install -y');
  });

  it('refuses an unknown mode or kind, and promote on a staging host', () => {
    const h = host('staging', '');
    expect(h.run(['everything']).status).toBe(2);
    expect(h.run(['promote', 'everything']).status).toBe(2);
    const refused = h.run(['promote', 'security'], { input: '' });
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('promote runs on production hosts only');
  });

  it('records the window opening after a routine run inside the window, for reboot.sh, and not after a security run', () => {
    const h = host('staging', '');
    expect(h.run(['security']).status).toBe(0);
    expect(h.state('routine-last-opening')).toBe('');
    expect(h.run(['routine']).status).toBe(0);
    expect(h.state('routine-last-opening')).toBe('2026-11-08\n');
  });
});

describe('updates.sh on a dnf host (FAKE rpm and dnf)', () => {
  it('production: a promotion skips held packages and keeps dnf from upgrading them as dependencies', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc/updates.env'), renderEnvFile('test', { UPKEEP_PACKAGE_FAMILY: 'dnf', UPKEEP_REBOOT: 'when-needed', UPKEEP_UPDATE_ROLE: 'production', UPKEEP_HOLD: 'postfix' }));
    writeFileSync(join(dir, 'etc/window.env'), windowEnv(sundayWindow));
    const PATH = fakes(dir, ['dnf']);
    writeFileSync(join(dir, 'bin/rpm'), '#!/bin/sh\nprintf "postfix 3.5.9-1.el9\\nopenssl 3.0.7-1.el9\\n"\n');
    chmodSync(join(dir, 'bin/rpm'), 0o755);
    const run = runScript('updates.sh', ['promote', 'security'], { PATH, UPKEEP_CONFIG_DIR: join(dir, 'etc'), UPKEEP_STATE_DIR: join(dir, 'state'), UPKEEP_NOW: String(Date.parse('2026-11-07T01:30:00Z') / 1000) }, 'postfix 3.5.25-1.el9 security small\nopenssl 3.0.7-2.el9 security small\n');
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toBe('held postfix 3.5.25-1.el9\ninstalled openssl 3.0.7-2.el9\n');
    expect(read(join(dir, 'calls'))).toBe('dnf -y upgrade --exclude=postfix openssl-3.0.7-2.el9\n');
  });
});

describe('updates.sh with the real apt-get of this machine, against a test repository over HTTP', () => {
  interface Installed {
    readonly name: string;
    readonly version: string;
    readonly depends?: string;
  }
  const utc = (time: string) => String(Date.parse(time) / 1000);

  /**
   * A host whose apt is this machine's apt-get, given its own package lists, sources (every suite
   * of `repo`) and dpkg status (`installed`) through APT_CONFIG and DPKG_ADMINDIR. apt-get update
   * and every simulation (-s) are apt's own, as is apt-mark (on the host's own record); an install
   * is recorded in "calls", not done: this machine's packages are not the test's to change.
   */
  function aptHost(repo: DebRepo, role: 'staging' | 'production', installed: readonly Installed[], settings: Record<string, string> = {}) {
    const dir = tempDir();
    for (const sub of ['etc', 'bin', 'apt/lists/partial', 'apt/cache/archives/partial', 'apt/etc/sources.list.d', 'apt/etc/preferences.d', 'apt/etc/apt.conf.d', 'dpkg/updates', 'dpkg/info']) mkdirSync(join(dir, sub), { recursive: true });
    writeFileSync(join(dir, 'etc/updates.env'), renderEnvFile('test', { UPKEEP_PACKAGE_FAMILY: 'apt', UPKEEP_REBOOT: 'when-needed', UPKEEP_UPDATE_ROLE: role, ...settings }));
    writeFileSync(join(dir, 'etc/window.env'), windowEnv(sundayWindow));
    const setInstalled = (packages: readonly Installed[]) =>
      writeFileSync(
        join(dir, 'dpkg/status'),
        packages
          .map((p) => `Package: ${p.name}\nStatus: install ok installed\nVersion: ${p.version}\nArchitecture: all\nMaintainer: tests\n${p.depends ? `Depends: ${p.depends}\n` : ''}Description: test package\n`)
          .join('\n'),
      );
    setInstalled(installed);
    writeFileSync(join(dir, 'apt/etc/sources.list'), `${repo.suites.map((s) => repo.sourceLine(s.name)).join('\n')}\n`);
    const aptConfig = join(dir, 'apt/apt.conf');
    writeFileSync(
      aptConfig,
      [
        `Dir::State "${dir}/apt";`,
        `Dir::State::status "${dir}/dpkg/status";`,
        `Dir::Cache "${dir}/apt/cache";`,
        `Dir::Etc::SourceList "${dir}/apt/etc/sources.list";`,
        `Dir::Etc::SourceParts "${dir}/apt/etc/sources.list.d";`,
        `Dir::Etc::Preferences "${dir}/apt/etc/preferences";`,
        `Dir::Etc::PreferencesParts "${dir}/apt/etc/preferences.d";`,
        `Dir::Etc::Parts "${dir}/apt/etc/apt.conf.d";`,
        // Neither this machine's apt.conf nor its apt.conf.d: the host is only what the test says.
        'Dir::Etc::main "/dev/null";',
        // The lists are in a temporary directory the _apt user may not enter.
        'APT::Sandbox::User "root";',
        'Debug::NoLocking "true";',
        // apt retries an unreachable mirror with growing pauses; a test needs to see it fail once.
        'Acquire::Retries "0";',
        '',
      ].join('\n'),
    );
    const realAptGet = whichProgram('apt-get');
    writeFileSync(join(dir, 'bin/apt-get'), `#!/bin/sh\ncase " $* " in *" -s "* | *" update "*) exec '${realAptGet}' "$@" ;; esac\necho "apt-get $*" >> '${dir}/calls'\n`);
    writeFileSync(join(dir, 'bin/apt-mark'), `#!/bin/sh\necho "apt-mark $*" >> '${dir}/calls'\nexec '${whichProgram('apt-mark')}' "$@"\n`);
    for (const name of ['apt-get', 'apt-mark']) chmodSync(join(dir, 'bin', name), 0o755);
    const env = (time: string): Record<string, string> => ({
      PATH: `${join(dir, 'bin')}:${process.env.PATH}`,
      APT_CONFIG: aptConfig,
      DPKG_ADMINDIR: join(dir, 'dpkg'),
      UPKEEP_CONFIG_DIR: join(dir, 'etc'),
      UPKEEP_STATE_DIR: join(dir, 'state'),
      UPKEEP_REBOOT_REQUIRED_PKGS: join(dir, 'reboot-required.pkgs'),
      UPKEEP_NOW: utc(time),
    });
    return {
      dir,
      setInstalled,
      /** updates.sh ARGS at `time` (UTC), with `input` on stdin. */
      run: (args: string[], time: string, input?: string) => runScriptAsync('updates.sh', args, env(time), () => {}, input),
      /** The security-updates check at `time`, with a 24-hour deadline. */
      check: (time: string) => runScript('check-security-updates.sh', [], { UPKEEP_PACKAGE_FAMILY: 'apt', UPKEEP_SECURITY_DEADLINE: '86400', UPKEEP_STATE_DIR: join(dir, 'state'), UPKEEP_NOW: utc(time) }),
      calls: () => read(join(dir, 'calls')),
      state: (name: string) => read(join(dir, 'state', name)),
    };
  }

  let repo: DebRepo | undefined;
  afterEach(async () => {
    await repo?.stop();
    repo = undefined;
  });

  it('GIVEN a fix pending past the deadline, WHEN apt cannot say what is on offer (unmet dependencies), THEN the run fails, the record is kept and the check stays CRITICAL', async () => {
    repo = await startDebRepo();
    await repo.publish({ name: 'demo', version: '1.1', suite: 'bookworm-security' });
    const h = aptHost(repo, 'production', [{ name: 'demo', version: '1.0' }]);
    for (const time of ['2026-11-05T00:00:00Z', '2026-11-07T23:00:00Z']) {
      const run = await h.run(['security'], time);
      expect(run.status, run.stderr).toBe(0);
    }
    const pending = h.state('updates/pending');
    expect(pending).toBe(`demo 1.1 ${utc('2026-11-05T00:00:00Z')} security\n`);
    expect(h.check('2026-11-08T00:00:00Z').stdout).toBe('CRITICAL: security fix demo 1.1 pending for 72h0m, past the 86400s deadline (1 pending)\n');

    // A package whose dependency is missing: every apt-get upgrade now ends in "E: Unmet dependencies" (exit 100).
    h.setInstalled([{ name: 'demo', version: '1.0' }, { name: 'broken', version: '1', depends: 'not-there' }]);
    const failed = await h.run(['security'], '2026-11-08T00:00:00Z');
    expect(failed.status).toBe(1);
    expect(failed.stderr).toContain('updates: apt-get -s upgrade failed (exit 100), so the updates on offer are unknown: E: Unmet dependencies.');
    expect(failed.stderr).toContain('the record of pending updates is kept as it was');
    expect(h.state('updates/pending')).toBe(pending);
    const check = h.check('2026-11-08T00:00:00Z');
    expect(check.stdout).toBe('CRITICAL: security fix demo 1.1 pending for 72h0m, past the 86400s deadline (1 pending)\n');
    expect(check.status).toBe(2);
    // A day on, the check also says why no newer fix could have been seen.
    expect(h.check('2026-11-09T00:00:00Z').stdout).toBe(
      'CRITICAL: security fix demo 1.1 pending for 96h0m, past the 86400s deadline (1 pending); the updates on offer were last read from the archive 25h0m ago, longer than the 86400s deadline: ' +
        "apt-get -s upgrade failed (exit 100), so the updates on offer are unknown: E: Unmet dependencies. Try 'apt --fix-broken install' with no packages (or specify a solution).\n",
    );
  });

  it('GIVEN the archive becomes unreachable (apt-get update exits 0 then, on old lists), THEN every run fails naming it, and the check is UNKNOWN once the lists are older than the deadline', async () => {
    repo = await startDebRepo();
    await repo.publish({ name: 'demo', version: '1.0', suite: 'bookworm' });
    const h = aptHost(repo, 'production', [{ name: 'demo', version: '1.0' }]);
    expect((await h.run(['security'], '2026-11-08T00:00:00Z')).status).toBe(0);
    expect(h.check('2026-11-08T00:00:00Z').stdout).toBe('OK: no security updates pending\n');
    const url = repo.url;
    // The mirror goes away (connection refused) and a fix appears that this host cannot see.
    await repo.stop();
    for (const time of ['2026-11-08T01:00:00Z', '2026-11-09T01:00:00Z']) {
      const run = await h.run(['security'], time);
      expect(run.status).toBe(1);
      expect(run.stderr).toContain(`updates: apt-get update could not refresh the package lists (exit 100: E: Failed to fetch ${url}/dists/bookworm/InRelease  Could not connect to 127.0.0.1`);
      expect(run.stderr).toContain('this run went on with the lists of the last refresh');
    }
    expect(h.check('2026-11-08T23:00:00Z').stdout).toBe('OK: no security updates pending\n');
    const blind = h.check('2026-11-09T01:00:00Z');
    expect(blind.stdout).toContain(`UNKNOWN: the updates on offer were last read from the archive 25h0m ago, longer than the 86400s deadline: apt-get update could not refresh the package lists (exit 100: E: Failed to fetch ${url}/dists/bookworm/InRelease`);
    expect(blind.status).toBe(3);
  });

  /** A security fix (app 2) that needs a newer libfoo, which the archive has in two versions. */
  async function libraryTransition(): Promise<DebRepo> {
    const r = await startDebRepo();
    await r.publish({ name: 'libfoo', version: '2', suite: 'bookworm' });
    await r.publish({ name: 'libfoo', version: '3', suite: 'bookworm' });
    await r.publish({ name: 'app', version: '2', suite: 'bookworm-security', depends: 'libfoo (>= 2)' });
    await r.publish({ name: 'demo', version: '1.1', suite: 'bookworm-security' });
    return r;
  }
  const INSTALL = 'apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold';

  it('GIVEN a promoted fix whose dependency apt would take at a version no wave promoted, THEN that fix is refused and the run fails; once staging\'s version is promoted, it is installed with the dependency pinned to it', async () => {
    repo = await libraryTransition();
    const h = aptHost(repo, 'production', [{ name: 'app', version: '1', depends: 'libfoo' }, { name: 'libfoo', version: '1' }, { name: 'demo', version: '1.0' }]);
    writeFileSync(join(h.dir, 'apt/extended_states'), 'Package: libfoo\nArchitecture: all\nAuto-Installed: 1\n');
    // Staging took libfoo 2 with app 2; libfoo came from the regular suite, so it is a routine update and this security wave does not carry it.
    const security = await h.run(['promote', 'security'], '2026-11-07T01:30:00Z', 'app 2 security small\nlibfoo 2 routine small\ndemo 1.1 security small\n');
    expect(security.stdout).toBe('refused app 2: it would upgrade libfoo to 3, and no version of libfoo has been promoted\ninstalled demo 1.1\n');
    expect(security.stderr).toContain('updates: promoted app 2 not installed: it would upgrade libfoo to 3, and no version of libfoo has been promoted\n');
    expect(security.status).toBe(1);
    expect(h.calls()).toBe(`${INSTALL} demo=1.1\n`);

    // The routine wave promotes libfoo 2 (disruptive: outside the window it waits); app 2 may now go, with libfoo at 2, not 3.
    writeFileSync(join(h.dir, 'calls'), '');
    const routine = await h.run(['promote', 'routine'], '2026-11-07T01:30:00Z', 'libfoo 2 routine restart\n');
    expect(routine.stderr).not.toContain('updates:');
    expect(routine.status).toBe(0);
    expect(routine.stdout).toBe('deferred libfoo 2 restart\ninstalled app 2\ninstalled demo 1.1\n');
    expect(h.calls()).toBe(`apt-mark showmanual libfoo\n${INSTALL} app=2 demo=1.1 libfoo=2\napt-mark auto libfoo\n`);
  });

  it('GIVEN a promoted fix that needs a package the policy holds upgraded, THEN it is refused, and the held package is not installed', async () => {
    repo = await libraryTransition();
    const h = aptHost(repo, 'production', [{ name: 'app', version: '1', depends: 'libfoo' }, { name: 'libfoo', version: '1' }], { UPKEEP_HOLD: 'libfoo' });
    const run = await h.run(['promote', 'security'], '2026-11-07T01:30:00Z', 'app 2 security small\nlibfoo 2 security small\n');
    expect(run.stdout).toBe('held libfoo 2\nrefused app 2: it would upgrade libfoo to 3, which the policy holds\n');
    expect(run.status).toBe(1);
    expect(h.calls()).toBe('');
  });

  it('GIVEN a promoted version that is not in the host\'s package lists, THEN it is refused with apt\'s own words', async () => {
    repo = await libraryTransition();
    const h = aptHost(repo, 'production', [{ name: 'demo', version: '1.0' }]);
    const run = await h.run(['promote', 'security'], '2026-11-07T01:30:00Z', 'demo 1.2 security small\n');
    expect(run.stdout).toBe("refused demo 1.2: apt cannot install it (exit 100: E: Version '1.2' for 'demo' was not found)\n");
    expect(run.status).toBe(1);
    expect(h.calls()).toBe('');
  });
});

describe('check-security-updates.sh: the deadline as a clock', () => {
  /** The check at `utc` over the record `pending` and the other files of STATE/updates `others`. */
  function check(pending: string | undefined, utc: string, others: Record<string, string> = {}) {
    const dir = tempDir();
    mkdirSync(join(dir, 'updates'));
    if (pending !== undefined) writeFileSync(join(dir, 'updates/pending'), pending);
    for (const [name, content] of Object.entries(others)) writeFileSync(join(dir, 'updates', name), content);
    return runScript('check-security-updates.sh', [], { UPKEEP_PACKAGE_FAMILY: 'apt', UPKEEP_SECURITY_DEADLINE: '86400', UPKEEP_STATE_DIR: dir, UPKEEP_NOW: String(Date.parse(utc) / 1000) });
  }
  const seen = Date.parse('2026-11-08T00:00:00Z') / 1000;
  const pending = `demo 1.1 ${seen} security\nother 2 ${seen - 7 * 86400} routine\n`;

  it('is OK while a security fix is pending within the deadline (routine updates do not count)', () => {
    const r = check(pending, '2026-11-08T23:00:00Z');
    expect(r.stdout).toBe('OK: 1 security fix(es) pending, oldest demo 1.1 for 1380m of the 86400s deadline\n');
    expect(r.status).toBe(0);
  });

  it('is CRITICAL once a fix has been pending longer than the deadline', () => {
    const r = check(pending, '2026-11-09T00:30:00Z');
    expect(r.stdout).toBe('CRITICAL: security fix demo 1.1 pending for 24h30m, past the 86400s deadline (1 pending)\n');
    expect(r.status).toBe(2);
  });

  it('is OK with nothing pending, and on a new host before its first security run (no false alert after an apply)', () => {
    expect(check('', '2026-11-09T00:30:00Z').stdout).toBe('OK: no security updates pending\n');
    const fresh = check(undefined, '2026-11-09T00:30:00Z');
    expect(fresh.stdout).toBe('OK: no updates recorded yet (upkeep-security-updates.service has not run)\n');
    expect(fresh.status).toBe(0);
  });

  it('is UNKNOWN once the archive was last read longer ago than the deadline, naming why (or that no run has read it since)', () => {
    const readAt = `${seen - 3600}\n`;
    expect(check(pending, '2026-11-08T22:00:00Z', { 'archive-read': readAt }).status).toBe(0);
    const stopped = check(pending, '2026-11-09T00:00:00Z', { 'archive-read': readAt });
    expect(stopped.stdout).toBe('UNKNOWN: the updates on offer were last read from the archive 25h0m ago, longer than the 86400s deadline: no run of upkeep-security-updates.service has read it since\n');
    expect(stopped.status).toBe(3);
    const unreachable = check('', '2026-11-09T00:00:00Z', { 'archive-read': readAt, 'archive-problem': `${seen} apt-get update could not refresh the package lists (exit 100: E: Failed to fetch ...)\n` });
    expect(unreachable.stdout).toBe('UNKNOWN: the updates on offer were last read from the archive 25h0m ago, longer than the 86400s deadline: apt-get update could not refresh the package lists (exit 100: E: Failed to fetch ...)\n');
    expect(unreachable.status).toBe(3);
  });

  it('GIVEN the archive has never been read on this host, THEN it is UNKNOWN once the first failure is older than the deadline', () => {
    const problem = { 'archive-problem': `${seen} apt-get update could not refresh the package lists (exit 100: E: Failed to fetch ...)\n` };
    expect(check(undefined, '2026-11-08T23:00:00Z', problem).stdout).toBe('OK: no updates recorded yet (upkeep-security-updates.service has not run)\n');
    const never = check(undefined, '2026-11-09T01:00:00Z', problem);
    expect(never.stdout).toBe('UNKNOWN: the updates on offer have not been read from the archive for 25h0m, longer than the 86400s deadline: apt-get update could not refresh the package lists (exit 100: E: Failed to fetch ...)\n');
    expect(never.status).toBe(3);
  });
});

describe('mitigations.sh never writes or removes a drop-in through a symlink another user could plant', () => {
  function host(dropIn: string, fixedIn = '99') {
    const dir = tempDir();
    const etc = join(dir, 'etc');
    mkdirSync(join(etc, 'mitigations'), { recursive: true });
    writeFileSync(join(etc, 'updates.env'), renderEnvFile('test', { UPKEEP_PACKAGE_FAMILY: 'apt', UPKEEP_REBOOT: 'never' }));
    writeFileSync(join(etc, 'mitigations/M-1.content'), 'feature off\n');
    // bash is installed here: "99" is newer than any bash (applies), "0.1" older (reverts).
    const list = (v: string) => `M-1\tbash\t${v}\tdrop-in\t${dropIn}\nM-2\tno-such-package\t-\tstop-unit\tfoo.service\n`;
    writeFileSync(join(etc, 'mitigations.list'), list(fixedIn));
    const env = { PATH: fakes(dir, ['systemctl', 'nft']), UPKEEP_CONFIG_DIR: etc, UPKEEP_STATE_DIR: join(dir, 'state') };
    return { dir, etc, run: () => runScript('mitigations.sh', [], env), revertNext: () => writeFileSync(join(etc, 'mitigations.list'), list('0.1')), calls: () => read(join(dir, 'calls')) };
  }
  /** A file only root should be able to change, e.g. /etc/shadow. */
  function precious(dir: string) {
    const path = join(dir, 'precious');
    writeFileSync(path, 'root:secret\n');
    return path;
  }

  it('GIVEN the drop-in path is a symlink to a precious file, THEN the file is untouched and the path is named', () => {
    const dir = tempDir();
    const target = precious(dir);
    mkdirSync(join(dir, 'conf.d'));
    symlinkSync(target, join(dir, 'conf.d/off.conf'));
    const h = host(join(dir, 'conf.d/off.conf'));
    const run = h.run();
    expect(readFileSync(target, 'utf8')).toBe('root:secret\n');
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`cannot write drop-in ${join(dir, 'conf.d/off.conf')}`);
    expect(run.stderr).toContain('it is a symlink');
    // The other mitigations still apply; the refused one is not recorded as applied.
    expect(h.calls()).toContain('systemctl stop foo.service');
    expect(existsSync(join(h.dir, 'state/mitigations/M-1'))).toBe(false);
  });

  it('GIVEN a directory on the drop-in path is a symlink, THEN nothing is written where it points', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'elsewhere'));
    symlinkSync(join(dir, 'elsewhere'), join(dir, 'conf.d'));
    const run = host(join(dir, 'conf.d/off.conf')).run();
    expect(existsSync(join(dir, 'elsewhere/off.conf'))).toBe(false);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`${join(dir, 'conf.d')} is a symbolic link`);
  });

  it('GIVEN the drop-in directory is writable by other users (who could plant a symlink at any time), THEN it is refused', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'conf.d'));
    chmodSync(join(dir, 'conf.d'), 0o777);
    const run = host(join(dir, 'conf.d/off.conf')).run();
    expect(existsSync(join(dir, 'conf.d/off.conf'))).toBe(false);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`${join(dir, 'conf.d')} is writable by other users`);
  });

  it('GIVEN the drop-in directory was swapped for a symlink after the mitigation applied, THEN the revert removes nothing where it points', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'conf.d'));
    const h = host(join(dir, 'conf.d/off.conf'));
    expect(h.run().status).toBe(0);
    expect(read(join(dir, 'conf.d/off.conf'))).toBe('feature off\n');
    rmSync(join(dir, 'conf.d'), { recursive: true });
    mkdirSync(join(dir, 'elsewhere'));
    const target = precious(join(dir, 'elsewhere'));
    renameSync(target, join(dir, 'elsewhere/off.conf'));
    symlinkSync(join(dir, 'elsewhere'), join(dir, 'conf.d'));
    h.revertNext();
    const run = h.run();
    expect(read(join(dir, 'elsewhere/off.conf'))).toBe('root:secret\n');
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`cannot revert drop-in ${join(dir, 'conf.d/off.conf')}`);
    // Still recorded as applied, so the revert is tried again on the next run.
    expect(existsSync(join(h.dir, 'state/mitigations/M-1'))).toBe(true);
  });

  it('replaces a drop-in file that is there already, with the content mode 0644', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'conf.d'));
    writeFileSync(join(dir, 'conf.d/off.conf'), 'old\n');
    const run = host(join(dir, 'conf.d/off.conf')).run();
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(read(join(dir, 'conf.d/off.conf'))).toBe('feature off\n');
    expect(statSync(join(dir, 'conf.d/off.conf')).mode & 0o777).toBe(0o644);
    expect(readdirSync(join(dir, 'conf.d'))).toEqual(['off.conf']);
  });
});

describe('check-security-updates.sh on a dnf host (FAKE dnf: no dnf in this machine)', () => {
  /** The check with a FAKE dnf that prints `out` and exits `rc`. */
  function check(out: string, rc: number) {
    const dir = tempDir();
    mkdirSync(join(dir, 'bin'));
    writeFileSync(join(dir, 'bin', 'dnf'), `#!/bin/sh\necho "$*" > '${dir}/args'\nprintf '%s' '${out}'\nexit ${rc}\n`);
    chmodSync(join(dir, 'bin', 'dnf'), 0o755);
    const run = runScript('check-security-updates.sh', [], { UPKEEP_PACKAGE_FAMILY: 'dnf', UPKEEP_SECURITY_DEADLINE: '86400', PATH: `${join(dir, 'bin')}:${process.env.PATH}` });
    return { ...run, args: read(join(dir, 'args')).trim() };
  }

  it('is WARNING while security updates are pending, asking dnf for the security advisories on offer', () => {
    const run = check('FEDORA-2026-1 Important/Sec. openssl-3.0.7-2.fc40.x86_64\n', 0);
    expect(run.stdout).toBe('WARNING: 1 security updates pending\n');
    expect(run.status).toBe(1);
    expect(run.args).toBe('-q updateinfo list --security --available');
    expect(check('', 0).status).toBe(0);
  });

  it('is UNKNOWN, never OK, when dnf itself fails (a mirror unreachable, an expired key), naming its error', () => {
    const run = check('Error: Failed to download metadata for repo updates: Cannot download repomd.xml\n', 1);
    expect(run.stdout).toBe('UNKNOWN: dnf cannot list security updates: Error: Failed to download metadata for repo updates: Cannot download repomd.xml\n');
    expect(run.status).toBe(3);
  });
});
