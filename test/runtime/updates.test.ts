import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderEnvFile } from '../../lib/compile/env-file.ts';
import { windowEnv } from '../../lib/compile/updates.ts';
import { sundayWindow } from '../fixtures/resolved-fleet.ts';
import { runScript, tempDir } from './run-script.ts';

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

describe('updates.sh on an apt host (FAKE apt-get and unattended-upgrade: nothing is installed here)', () => {
  function host() {
    const dir = tempDir();
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc/updates.env'), renderEnvFile('test', { UPKEEP_PACKAGE_FAMILY: 'apt', UPKEEP_REBOOT: 'when-needed' }));
    writeFileSync(join(dir, 'etc/window.env'), windowEnv(sundayWindow));
    mkdirSync(join(dir, 'bin'));
    for (const name of ['apt-get', 'unattended-upgrade']) {
      writeFileSync(join(dir, 'bin', name), `#!/bin/sh\necho "${name} $* APT_CONFIG=\${APT_CONFIG:-}" >> '${dir}/calls'\n`);
      chmodSync(join(dir, 'bin', name), 0o755);
    }
    const run = (kind: string, utc = '2026-11-08T01:30:00Z') =>
      runScript('updates.sh', [kind], {
        PATH: `${join(dir, 'bin')}:${process.env.PATH}`,
        UPKEEP_CONFIG_DIR: join(dir, 'etc'),
        UPKEEP_STATE_DIR: join(dir, 'state'),
        UPKEEP_NOW: String(Date.parse(utc) / 1000),
        APT_CONFIG: '',
      });
    return { dir, run, calls: () => readFileSync(join(dir, 'calls'), 'utf8'), record: () => read(join(dir, 'state/routine-last-opening')) };
  }

  it('runs the security pass with the security-only apt configuration', () => {
    const h = host();
    expect(h.run('security').status).toBe(0);
    expect(h.calls()).toBe(`apt-get -q update APT_CONFIG=\nunattended-upgrade -v APT_CONFIG=${h.dir}/etc/apt/security.conf\n`);
  });

  it('runs the routine pass with the system configuration, and refuses an unknown kind', () => {
    const h = host();
    expect(h.run('routine').status).toBe(0);
    expect(h.calls()).toBe('apt-get -q update APT_CONFIG=\nunattended-upgrade -v APT_CONFIG=\n');
    expect(h.run('everything').status).toBe(2);
  });

  it('records the window opening after a routine run inside the window, for reboot.sh, and not after a security run', () => {
    const h = host();
    expect(h.run('security').status).toBe(0);
    expect(h.record()).toBe('');
    expect(h.run('routine').status).toBe(0);
    expect(h.record()).toBe('2026-11-08\n');
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
