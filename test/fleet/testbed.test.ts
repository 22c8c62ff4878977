import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCommand } from './run-command.ts';
import { FLEET_HOOK_TIMEOUT_MS, FLEET_TEST_TIMEOUT_MS, fleetAvailable, reapAbandonedFleets, startFleet, type TestFleet, type TestHost } from './testbed.ts';

/** Process ids of systemd-nspawn processes whose command line mentions dir (this fleet's upper dirs). */
function nspawnProcessesUsing(dir: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        return argv[0]?.endsWith('systemd-nspawn') === true && argv.some((arg) => arg.includes(dir));
      } catch {
        return false;
      }
    })
    .map(Number);
}

function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((entry) => {
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** The processes among pids that still run (zombies waiting for their parent count as ended). */
function livingProcesses(pids: readonly number[]): number[] {
  return pids.filter((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
    } catch {
      return false;
    }
  });
}

/** The pid of the test process that holds this loopback address, if any. */
function addressOwner(address: string): number | undefined {
  const claim = join(process.env.UPKEEP_TESTBED_RUN ?? '/run/upkeep-testbed', `address-${address.split('.')[3]}`, 'owner.json');
  return existsSync(claim) ? (JSON.parse(readFileSync(claim, 'utf8')) as { pid: number }).pid : undefined;
}

async function eventually(check: () => void, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(100);
    }
  }
}

interface AbandonedRun {
  readonly child: ChildProcess;
  readonly started: Promise<{ workDir: string; address: string }>;
  readonly exited: Promise<number | null>;
}

/** Runs fixtures/abandoned-fleet.ts in its own node process (not via the tsx CLI, which would add a parent process). */
function startAbandonedRun(mode: 'exit' | 'hang'): AbandonedRun {
  const fixture = fileURLToPath(new URL('./fixtures/abandoned-fleet.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const started = new Promise<{ workDir: string; address: string }>((resolve, reject) => {
    let stdout = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split('\n')[0];
      if (stdout.includes('\n') && line) resolve(JSON.parse(line) as { workDir: string; address: string });
    });
    void exited.then((code) => reject(new Error(`abandoned-fleet.ts ${mode} exited with ${code} before starting its fleet:\n${stderr}`)));
  });
  return { child, started, exited };
}

/** The fleet's ssh options with another known_hosts file in place of the pinned one. */
function withKnownHosts(fleet: TestFleet, file: string): string[] {
  return fleet.sshOptions.map((option) => (option.startsWith('UserKnownHostsFile=') ? `UserKnownHostsFile=${file}` : option));
}

async function mustSucceed(host: TestHost, command: string, input?: string): Promise<string> {
  const result = await host.ssh(command, input === undefined ? {} : { input });
  if (result.exitCode !== 0) throw new Error(`${host.name}: ${command} exited with ${result.exitCode}:\n${result.stderr}`);
  return result.stdout;
}

describe('whether the fleet can run', () => {
  const missing = { ok: false, reason: 'missing debootstrap' } as const;

  it('skips the fleet tests with a loud warning when a capability is missing', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      expect(fleetAvailable('the applier end to end', missing, {})).toBe(false);
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/!!! SKIPPING the applier end to end: .*missing debootstrap/));
    } finally {
      warn.mockRestore();
    }
  });

  it('fails instead of skipping when UPKEEP_REQUIRE_FLEET=1', () => {
    expect(() => fleetAvailable('the applier end to end', missing, { UPKEEP_REQUIRE_FLEET: '1' })).toThrow(
      'UPKEEP_REQUIRE_FLEET=1 but the test fleet cannot run here: missing debootstrap',
    );
  });

  it('runs the fleet tests when everything is there', () => {
    expect(fleetAvailable('the applier end to end', { ok: true }, { UPKEEP_REQUIRE_FLEET: '1' })).toBe(true);
  });
});

describe.skipIf(!fleetAvailable('the test fleet smoke test'))('the test fleet', () => {
  let fleet: TestFleet;
  let backup: TestHost;
  let web: TestHost;

  beforeAll(async () => {
    fleet = await startFleet(['backup1', 'web1']);
    backup = fleet.host('backup1');
    web = fleet.host('web1');
  }, FLEET_HOOK_TIMEOUT_MS);

  afterAll(() => fleet?.stop(), FLEET_HOOK_TIMEOUT_MS);

  it('boots every host into real systemd, each answering over ssh under its own name, address and key', async () => {
    for (const host of fleet.hosts) {
      expect(['running', 'degraded']).toContain(host.bootState);
      expect(host.address).toMatch(/^127\.0\.1\.\d+$/);
      expect((await mustSucceed(host, 'hostname')).trim()).toBe(host.name);
      expect((await mustSucceed(host, 'cat /proc/1/comm')).trim()).toBe('systemd');
      expect((await mustSucceed(host, 'ss -Htln')).trim()).toContain(`${host.address}:22`);
    }
    expect(new Set(fleet.hosts.map((host) => host.address)).size).toBe(2);
    expect(new Set(fleet.hosts.map((host) => host.hostKey)).size).toBe(2);
    expect(readFileSync(fleet.knownHostsFile, 'utf8')).toContain(`${backup.address} ${backup.hostKey}`);
  }, FLEET_TEST_TIMEOUT_MS);

  it('runs each host in cgroups of its own, so their systemds do not manage each other\'s units', () => {
    const cgroupsOf = (host: TestHost) => readFileSync(`/proc/${nspawnProcessesUsing(host.upperDir)[0]}/cgroup`, 'utf8');
    expect(cgroupsOf(backup)).toMatch(new RegExp(`/upkeep-testbed-upkeep-${backup.address.replaceAll('.', '-')}(/|$)`, 'm'));
    expect(cgroupsOf(backup)).not.toBe(cgroupsOf(web));
    expect(fleet.hosts.every((host) => host.bootState === 'running')).toBe(true);
  });

  it('refuses a host whose key differs from the pinned one, and a host that is not pinned at all', async () => {
    const wrongPin = join(fleet.workDir, 'wrong_known_hosts');
    writeFileSync(wrongPin, `${backup.address} ${web.hostKey}\n`);
    const wrong = await runCommand('ssh', [...withKnownHosts(fleet, wrongPin), '--', `root@${backup.address}`, 'true']);
    expect(wrong.exitCode).toBe(255);
    expect(wrong.stderr).toMatch(/host key verification failed/i);

    const empty = join(fleet.workDir, 'empty_known_hosts');
    writeFileSync(empty, '');
    const unpinned = await runCommand('ssh', [...withKnownHosts(fleet, empty), '--', `root@${backup.address}`, 'true']);
    expect(unpinned.exitCode).toBe(255);

    const rightPin = join(fleet.workDir, 'right_known_hosts');
    writeFileSync(rightPin, `${backup.address} ${backup.hostKey}\n`);
    const right = await runCommand('ssh', [...withKnownHosts(fleet, rightPin), '--', `root@${backup.address}`, 'true']);
    expect(right.exitCode).toBe(0);
  }, FLEET_TEST_TIMEOUT_MS);

  it('runs systemd timers on every host, apt\'s daily update and upgrade timers among them', async () => {
    for (const host of fleet.hosts) {
      const timers = await mustSucceed(host, 'systemctl list-timers --all --no-pager --no-legend');
      expect(timers).toContain('apt-daily.timer');
      expect(timers).toContain('apt-daily-upgrade.timer');
    }
  }, FLEET_TEST_TIMEOUT_MS);

  it('backs web1 up with restic over sftp to backup1 and restores a deleted file', async () => {
    // GIVEN web1 owns a key that backup1 authorises, and pins backup1's host key.
    const webKey = await mustSucceed(web, "ssh-keygen -q -t ed25519 -N '' -C backup@web1 -f /root/.ssh/backup_ed25519 && cat /root/.ssh/backup_ed25519.pub");
    await mustSucceed(backup, 'cat >> /root/.ssh/authorized_keys && mkdir -p /srv/restic', webKey);
    await mustSucceed(web, 'cat > /root/.ssh/known_hosts', `${backup.address} ${backup.hostKey}\n`);
    const sftp = `ssh -i /root/.ssh/backup_ed25519 -o StrictHostKeyChecking=yes -o BatchMode=yes root@${backup.address} -s sftp`;
    const restic = `RESTIC_PASSWORD=fleet-test-only restic -r sftp:root@${backup.address}:/srv/restic/web1 -o sftp.command='${sftp}'`;
    await mustSucceed(web, 'mkdir -p /srv/www && echo "precious $(hostname)" > /srv/www/index.html');

    // WHEN web1 backs up, loses the file and restores it.
    await mustSucceed(web, `${restic} init && ${restic} backup --quiet /srv/www`);
    expect(existsSync(join(backup.upperDir, 'srv/restic/web1/config'))).toBe(true);
    await mustSucceed(web, 'rm /srv/www/index.html');
    expect((await web.ssh('test -e /srv/www/index.html')).exitCode).toBe(1);
    await mustSucceed(web, `${restic} restore latest --target / --include /srv/www/index.html`);

    // THEN the file is back as it was.
    expect((await mustSucceed(web, 'cat /srv/www/index.html')).trim()).toBe('precious web1');
  }, FLEET_TEST_TIMEOUT_MS);

  it('shuts a host down cleanly and boots it again with the files it wrote', async () => {
    await mustSucceed(web, 'echo kept > /root/marker');
    expect(readFileSync(join(web.upperDir, 'root/marker'), 'utf8')).toBe('kept\n');

    await web.stop();
    expect(web.running).toBe(false);
    expect(nspawnProcessesUsing(web.upperDir)).toEqual([]);
    expect((await web.ssh('true', { timeoutMs: 15_000 })).exitCode).toBe(255);
    expect((await mustSucceed(backup, 'hostname')).trim()).toBe('backup1');

    await web.start();
    expect(web.running).toBe(true);
    expect((await mustSucceed(web, 'cat /root/marker')).trim()).toBe('kept');
  }, FLEET_TEST_TIMEOUT_MS);

  it('kills a host like a power loss, leaving none of its processes, and boots it again', async () => {
    const [nspawnPid] = nspawnProcessesUsing(web.upperDir);
    expect(nspawnPid).toBeDefined();
    const containerProcesses = childrenOf(nspawnPid!);
    expect(containerProcesses).toHaveLength(1);

    await web.kill();
    expect(web.running).toBe(false);
    expect(nspawnProcessesUsing(web.upperDir)).toEqual([]);
    expect(livingProcesses([nspawnPid!, ...containerProcesses])).toEqual([]);

    await web.start();
    expect((await mustSucceed(web, 'hostname')).trim()).toBe('web1');
  }, FLEET_TEST_TIMEOUT_MS);

  it('stops the whole fleet leaving no container running, no work directory and no claimed address', async () => {
    expect(nspawnProcessesUsing(fleet.workDir)).toHaveLength(2);
    await fleet.stop();
    expect(nspawnProcessesUsing(fleet.workDir)).toEqual([]);
    expect(existsSync(fleet.workDir)).toBe(false);
    for (const host of fleet.hosts) expect(host.running).toBe(false);
    expect((await backup.ssh('true', { timeoutMs: 15_000 })).exitCode).toBe(255);
    for (const host of fleet.hosts) expect(addressOwner(host.address)).not.toBe(process.pid);
    expect(readdirSync('/sys/fs/cgroup', { recursive: true }).map(String).filter((path) => path.includes(`upkeep-testbed-upkeep-${backup.address.replaceAll('.', '-')}`))).toEqual([]);
  }, FLEET_TEST_TIMEOUT_MS);
});

describe.skipIf(!fleetAvailable('the test fleet clean-up tests'))('a test run that never stops its fleet', () => {
  it('leaves nothing behind when it exits without stopping the fleet', async () => {
    const run = startAbandonedRun('exit');
    const { workDir, address } = await run.started;
    expect(await run.exited).toBe(3);
    await eventually(() => expect(nspawnProcessesUsing(workDir)).toEqual([]));
    expect(existsSync(workDir)).toBe(false);
    expect(addressOwner(address)).toBeUndefined();
  }, FLEET_HOOK_TIMEOUT_MS);

  it('is cleaned up after by the next run when it was killed outright', async () => {
    const run = startAbandonedRun('hang');
    const { workDir, address } = await run.started;
    run.child.kill('SIGKILL');
    await run.exited;
    // SIGKILL gives no chance to clean up: the container outlives its test run ...
    expect(nspawnProcessesUsing(workDir)).toHaveLength(1);

    reapAbandonedFleets();

    // ... until the next run reaps it.
    await eventually(() => expect(nspawnProcessesUsing(workDir)).toEqual([]));
    expect(existsSync(workDir)).toBe(false);
    expect(addressOwner(address)).toBeUndefined();
  }, FLEET_HOOK_TIMEOUT_MS);
});
