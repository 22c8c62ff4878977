import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RUNTIME_DIR, UNIT_DIR, type HostDesiredState, type ManagedFile } from '../../lib/compile/desired-state.ts';
import { compileHost } from '../../lib/compile/host.ts';
import type { ResolvedHost } from '../../lib/policy/resolved.ts';
import { resolvedFleet } from '../fixtures/resolved-fleet.ts';
import { RUNTIME_SOURCE, tempDir } from '../runtime/run-script.ts';
import { writeRoot } from './unit-root.ts';
import { programsAvailable } from '../programs.ts';

const fleet = resolvedFleet();
const compiled = (name: string, f = fleet): HostDesiredState => compileHost(f, f.hosts.find((h) => h.name === name)!);
const file = (state: HostDesiredState, path: string): ManagedFile => {
  const found = state.files.find((f) => f.path === path);
  if (!found) throw new Error(`${state.host} has no ${path}`);
  return found;
};
const paths = (state: HostDesiredState) => state.files.map((f) => f.path);
const host = (name: string) => fleet.hosts.find((h) => h.name === name)!;

/** Sources a compiled env file with the real sh and prints one variable. */
function sourced(content: string, variable: string): string {
  const dir = tempDir({ 'x.env': content });
  const run = spawnSync('sh', ['-c', `. "$1/x.env"; printf '%s' "$${variable}"`, 'sh', dir], { encoding: 'utf8' });
  rmSync(dir, { recursive: true });
  return run.stdout;
}

describe('compileHost', () => {
  it('is deterministic: compiling the same fleet twice gives identical states', () => {
    const once = fleet.hosts.map((h) => compileHost(resolvedFleet(), h));
    const twice = fleet.hosts.map((h) => compileHost(resolvedFleet(), h));
    expect(JSON.stringify(twice)).toBe(JSON.stringify(once));
  });

  it('lists files by path and units and packages sorted, without repeats', () => {
    for (const h of fleet.hosts) {
      const state = compileHost(fleet, h);
      expect(paths(state)).toEqual([...new Set(paths(state))].sort());
      expect(state.units).toEqual([...new Set(state.units)].sort());
      expect(state.packages).toEqual([...new Set(state.packages)].sort());
    }
  });

  it('writes no machine paths or timestamps into compiled files', () => {
    for (const h of fleet.hosts) {
      for (const f of compileHost(fleet, h).files) {
        expect(f.content ?? '').not.toContain(homedir());
        expect(f.content ?? '').not.toContain(process.cwd());
        expect(f.content ?? '').not.toMatch(/20\d\d-\d\d-\d\dT\d\d:/);
      }
    }
  });

  it('enables only timers, each with its unit file and the service it starts', () => {
    for (const h of fleet.hosts) {
      const state = compileHost(fleet, h);
      expect(state.units.length).toBeGreaterThan(0);
      for (const unit of state.units) {
        expect(unit).toMatch(/^upkeep-[a-z0-9-]+\.timer$/);
        expect(paths(state)).toContain(`${UNIT_DIR}/${unit}`);
        expect(paths(state)).toContain(`${UNIT_DIR}/${unit.replace(/\.timer$/, '.service')}`);
      }
    }
  });

  it('installs exactly the runtime programs its units run, 0755, with the content of lib/runtime', () => {
    const staging = compiled('web-staging');
    const programs = staging.files.filter((f) => f.path.startsWith(`${RUNTIME_DIR}/`));
    for (const p of programs) {
      expect(p.mode).toBe('0755');
      expect(p.content).toBe(readFileSync(join(RUNTIME_SOURCE, p.path.slice(RUNTIME_DIR.length + 1)), 'utf8'));
    }
    const names = programs.map((p) => p.path.slice(RUNTIME_DIR.length + 1));
    expect(names).toContain('in-window.sh');
    expect(names).toContain('check-disk-usage.sh');
    // Even without declared mitigations: it reverts those removed from the policy.
    expect(names).toContain('mitigations.sh');
    expect(file(staging, '/etc/upkeep/mitigations.list').content).toBe('');
    expect(names).not.toContain('check-http.sh');
    const units = staging.files.filter((f) => f.path.startsWith(UNIT_DIR)).map((f) => f.content).join('\n');
    for (const m of units.matchAll(/\/usr\/local\/lib\/upkeep\/([a-z0-9-]+\.sh)/g)) expect(names).toContain(m[1]);
  });

  describe('secrets', () => {
    it('refers to the restic password and webhook tokens without content, as root-only files', () => {
      const web1 = compiled('web1');
      expect(file(web1, '/etc/upkeep/restic/backup.password')).toEqual({ path: '/etc/upkeep/restic/backup.password', mode: '0600', owner: 'root:root', secret: { env: 'RESTIC_PASSWORD_WEB1' } });
      expect(file(web1, '/etc/upkeep/alert/ops.token')).toEqual({ path: '/etc/upkeep/alert/ops.token', mode: '0600', owner: 'root:root', secret: { env: 'OPS_TOKEN' } });
      for (const f of web1.files) expect(f.content === undefined).toBe(f.secret !== undefined);
    });

    it('puts the IMAP password of a mail-delivery check on the monitor that runs it, not on the mail host', () => {
      expect(file(compiled('monitor1'), '/etc/upkeep/checks/mail1-delivery.secret')).toMatchObject({ mode: '0600', secret: { env: 'PROBE_IMAP' } });
      expect(paths(compiled('mail1')).filter((p) => p.includes('delivery'))).toEqual([]);
    });
  });

  describe.skipIf(!programsAvailable('test/compile/host.test.ts (updates on an apt host)', ['systemctl']))('updates on an apt host', () => {
    const web1 = compiled('web1');

    it('turns the stock periodic apt runs off so that only upkeep timers install updates', () => {
      expect(file(web1, '/etc/apt/apt.conf.d/20auto-upgrades').content).toContain('APT::Periodic::Unattended-Upgrade "0";');
      expect(web1.packages).toContain('unattended-upgrades');
    });

    it('gives the security run security origins only and the routine run every origin, both without held packages (real apt-config)', () => {
      const root = writeRoot(web1);
      // Point apt at the compiled tree instead of /etc; the files are the compiled ones otherwise.
      // A stock Ubuntu file that allows more origins must not widen either run.
      writeFileSync(join(root, 'etc/apt/apt.conf.d/50unattended-upgrades'), 'Unattended-Upgrade::Allowed-Origins { "${distro_id}:${distro_codename}"; "${distro_id}ESM:${distro_codename}-infra-security"; };\n');
      const security = file(web1, '/etc/upkeep/apt/security.conf').content!.replace('"/etc/upkeep/apt/security.conf"', `"${root}/etc/upkeep/apt/security.conf"`);
      writeFileSync(join(root, 'security.conf'), `Dir::Etc::parts "${root}/etc/apt/apt.conf.d";\n${security}`);
      writeFileSync(join(root, 'etc/upkeep/apt/security.conf'), security);
      writeFileSync(join(root, 'routine.conf'), `Dir::Etc::parts "${root}/etc/apt/apt.conf.d";\n`);
      const dump = (config: string) => spawnSync('apt-config', ['dump'], { encoding: 'utf8', env: { ...process.env, APT_CONFIG: join(root, config) } }).stdout;
      const origins = (text: string) => [...text.matchAll(/^Unattended-Upgrade::Origins-Pattern:: "(.*)";$/gm)].map((m) => m[1]);
      const allowed = (text: string) => [...text.matchAll(/^Unattended-Upgrade::Allowed-Origins:: "(.*)";$/gm)].map((m) => m[1]);
      const held = (text: string) => [...text.matchAll(/^Unattended-Upgrade::Package-Blacklist:: "(.*)";$/gm)].map((m) => m[1]);
      const securityDump = dump('security.conf');
      const routineDump = dump('routine.conf');
      rmSync(root, { recursive: true });
      expect(origins(securityDump)).toEqual(['origin=${distro_id},archive=${distro_codename}-security', 'origin=Debian,codename=${distro_codename}-security,label=Debian-Security']);
      expect(origins(routineDump)).toHaveLength(6);
      expect(origins(routineDump)).toContain('origin=${distro_id},codename=${distro_codename}-updates');
      expect(held(securityDump)).toEqual(['^nginx$', '^libstdc\\+\\+6$']);
      expect(held(routineDump)).toEqual(held(securityDump));
      expect(allowed(securityDump)).toEqual([]);
      expect(allowed(routineDump)).toEqual([]);
    });

    it('runs routine updates only through the window gate, stops them when the window closes, then looks for a reboot', () => {
      const service = file(web1, `${UNIT_DIR}/upkeep-routine-updates.service`).content!;
      expect(service).toContain('ExecCondition=/usr/local/lib/upkeep/in-window.sh "/etc/upkeep/window.env"');
      expect(service).toContain('TimeoutStartSec=7200s');
      expect(service).toContain('ExecStartPost=/usr/bin/systemctl --no-block start upkeep-reboot.service');
      expect(service).not.toContain('ProtectSystem');
      expect(file(web1, `${UNIT_DIR}/upkeep-routine-updates.timer`).content).toMatch(/^Persistent=yes$/m);
    });

    it('checks for security updates on the policy interval, never rebooting nor restarting services', () => {
      expect(file(web1, `${UNIT_DIR}/upkeep-security-updates.timer`).content).toContain('OnUnitActiveSec=3600s');
      expect(file(web1, `${UNIT_DIR}/upkeep-security-updates.service`).content).toContain('Environment=NEEDRESTART_MODE=l');
      expect(file(web1, `${UNIT_DIR}/upkeep-routine-updates.service`).content).toContain('Environment=NEEDRESTART_MODE=a');
      expect(file(web1, `${UNIT_DIR}/upkeep-security-updates.service`).content).not.toMatch(/ExecStart.*reboot/);
    });

    it('writes the window for the runtime gate exactly as resolved', () => {
      const env = file(web1, '/etc/upkeep/window.env').content!;
      expect(sourced(env, 'UPKEEP_WINDOW_TZ')).toBe('Europe/Berlin');
      expect(sourced(env, 'UPKEEP_WINDOW_BLACKOUTS')).toBe('2026-12-20 2026-12-27');
      expect(sourced(env, 'UPKEEP_WINDOW_START_MINUTE')).toBe('120');
    });

    it('lists mitigations one per line for mitigations.sh and stages drop-in content', () => {
      expect(file(web1, '/etc/upkeep/mitigations.list').content).toBe(
        'CVE-2026-0001\topenssh-server\t1:9.2p1-2+deb12u9\tfirewall-port\t2222/tcp\n' +
          'CVE-2026-0002\tcups-daemon\t-\tmask-unit\tcups.service\n' +
          'CVE-2026-0003\tnginx\t1.22.1-9+deb12u5\tdrop-in\t/etc/nginx/conf.d/no-http2.conf\n',
      );
      expect(file(web1, '/etc/upkeep/mitigations/CVE-2026-0003.content').content).toBe("# it's off\nhttp2 off;\n");
      expect(web1.units).toContain('upkeep-mitigations.timer');
      expect(web1.packages).toContain('nftables');
    });

    it('refuses a mitigation whose unit name could smuggle shell or tabs', () => {
      const bad: ResolvedHost = { ...host('web1'), updates: { ...host('web1').updates!, mitigations: [{ id: 'X-1', package: 'p', action: { kind: 'stop-unit', unit: 'a;reboot' } }] } };
      expect(() => compileHost(resolvedFleet([bad]), bad)).toThrow(/unit name "a;reboot"/);
    });
  });

  describe('updates on a dnf host', () => {
    const mail1 = compiled('mail1');

    it('configures dnf-automatic runs for security and routine updates, excluding held packages, never rebooting itself', () => {
      const security = file(mail1, '/etc/upkeep/dnf/security.conf').content!;
      expect(security).toContain('upgrade_type = security');
      expect(security).toContain('reboot = never');
      expect(security).toContain('exclude = postfix');
      expect(file(mail1, '/etc/upkeep/dnf/routine.conf').content).toContain('upgrade_type = default');
      expect(mail1.packages).toEqual(expect.arrayContaining(['dnf-automatic', 'dnf-utils']));
      expect(mail1.packages).not.toContain('unattended-upgrades');
      expect(paths(mail1).filter((p) => p.startsWith('/etc/apt'))).toEqual([]);
    });

    it('with reboot "always", keeps the reboot timer and tells reboot.sh the policy', () => {
      expect(mail1.units).toContain('upkeep-reboot.timer');
      expect(sourced(file(mail1, '/etc/upkeep/updates.env').content!, 'UPKEEP_REBOOT')).toBe('always');
    });
  });

  it('tells updates.sh whether the host is staging (installs from the archive) or production (promoted versions only), and a rolling channel', () => {
    const env = (state: HostDesiredState) => file(state, '/etc/upkeep/updates.env').content!;
    expect(sourced(env(compiled('web-staging')), 'UPKEEP_UPDATE_ROLE')).toBe('staging');
    expect(sourced(env(compiled('mail1')), 'UPKEEP_UPDATE_ROLE')).toBe('production');
    expect(env(compiled('mail1'))).not.toContain('UPKEEP_UPDATE_CHANNEL');
    const rolling: ResolvedHost = { ...host('web-staging'), updates: { ...host('web-staging').updates!, channel: 'rolling' } };
    expect(sourced(env(compileHost(resolvedFleet([rolling]), rolling)), 'UPKEEP_UPDATE_CHANNEL')).toBe('rolling');
  });

  it('tells updates.sh the held packages, which promotion must skip on apt and dnf hosts alike', () => {
    const env = (state: HostDesiredState) => file(state, '/etc/upkeep/updates.env').content!;
    expect(sourced(env(compiled('web1')), 'UPKEEP_HOLD')).toBe('nginx libstdc++6');
    expect(sourced(env(compiled('mail1')), 'UPKEEP_HOLD')).toBe('postfix');
    expect(env(compiled('web-staging'))).not.toContain('UPKEEP_HOLD');
  });

  it('compiles a host exempt from updates and backups to its monitoring alone', () => {
    const exempt: ResolvedHost = { ...host('web-staging'), updates: undefined, backups: undefined, exempt: { updates: 'appliance', backups: 'stateless' } };
    const state = compileHost(resolvedFleet([exempt]), exempt);
    expect(state.units.every((u) => u.startsWith('upkeep-check-'))).toBe(true);
    expect(state.units.length).toBe(6);
    expect(state.packages).toEqual(['curl', 'smartmontools']);
  });

  it('with reboot "never", has no reboot unit at all', () => {
    const monitor1 = compiled('monitor1');
    expect(paths(monitor1).filter((p) => /upkeep-reboot\.|\/reboot\.sh$/.test(p))).toEqual([]);
    expect(paths(compiled('web1'))).toContain(`${UNIT_DIR}/upkeep-reboot.timer`);
    expect(file(monitor1, `${UNIT_DIR}/upkeep-routine-updates.service`).content).not.toContain('upkeep-reboot');
  });

  describe('backups', () => {
    it('reaches the backup host at its address through ssh with its pinned host key, as its own user there', () => {
      const web1 = compiled('web1');
      expect(file(web1, '/etc/upkeep/restic/known_hosts').content).toBe(`203.0.113.10 ${host('backup1').hostKey}\n`);
      const env = file(web1, '/etc/upkeep/restic/backup.env').content!;
      expect(sourced(env, 'RESTIC_REPOSITORY')).toBe('rclone:restic-web1@backup1:/srv/restic/web1');
      expect(sourced(env, 'UPKEEP_RCLONE_PROGRAM')).toBe(
        'ssh -i /var/lib/upkeep/backup/id_ed25519 -o UserKnownHostsFile=/etc/upkeep/restic/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=30 -o ServerAliveInterval=60 -p 22 restic-web1@203.0.113.10',
      );
      expect(sourced(env, 'UPKEEP_SFTP_COMMAND')).toBe('');
    });

    it('excludes pseudo file systems and caches, then the policy patterns', () => {
      const excludes = file(compiled('web1'), '/etc/upkeep/restic/backup.excludes').content!.split('\n');
      expect(excludes).toEqual(expect.arrayContaining(['/proc', '/sys', '/dev', '/run', '/tmp', '/var/cache', '/var/www/*/cache']));
      expect(excludes).not.toContain('/var/lib/upkeep');
    });

    it('backs up mounted volumes (Hetzner mounts them at /mnt/HC_Volume_<id>), but never a local repository into itself', () => {
      const excludes = file(compiled('web1'), '/etc/upkeep/restic/backup.excludes').content!.split('\n');
      expect(excludes.filter((e) => e.startsWith('/mnt') || e.startsWith('/media'))).toEqual([]);
      const local: ResolvedHost = { ...host('web1'), backups: { ...host('web1').backups!, repository: '/mnt/backup/web1/', repositoryHost: undefined } };
      const state = compileHost(resolvedFleet([local]), local);
      expect(file(state, '/etc/upkeep/restic/backup.excludes').content!.split('\n')).toContain('/mnt/backup/web1');
    });

    it('runs backups idle and read-only towards the system, with a catch-up after downtime', () => {
      const web1 = compiled('web1');
      const service = file(web1, `${UNIT_DIR}/upkeep-backup.service`).content!;
      for (const line of ['ProtectSystem=strict', 'ProtectHome=read-only', 'PrivateTmp=yes', 'NoNewPrivileges=yes', 'IOSchedulingClass=idle', 'Nice=19']) expect(service).toContain(line);
      expect(file(web1, `${UNIT_DIR}/upkeep-backup.timer`).content).toContain('OnCalendar=*-*-* 01:30:00\nPersistent=yes');
      expect(web1.units).toEqual(expect.arrayContaining(['upkeep-backup.timer', 'upkeep-backup-check.timer', 'upkeep-restore-drill.timer']));
      // The backup host serves it append-only: only the backup host can apply the retention.
      expect(web1.units).not.toContain('upkeep-backup-forget.timer');
    });

    it('lets the jobs write to a repository on a local path, and nowhere else in the system', () => {
      const local: ResolvedHost = { ...host('web1'), backups: { ...host('web1').backups!, repository: '/mnt/backup/web1', repositoryHost: undefined } };
      const state = compileHost(resolvedFleet([local]), local);
      expect(file(state, `${UNIT_DIR}/upkeep-backup.service`).content).toContain('ProtectSystem=strict\n');
      expect(file(state, `${UNIT_DIR}/upkeep-restore-drill.service`).content).toContain('ReadWritePaths=-/mnt/backup/web1\n');
      expect(file(state, `${UNIT_DIR}/upkeep-backup.service`).content).toContain('ExecStartPre=+/usr/bin/mkdir -p -m 0700 "/mnt/backup/web1"\n');
      expect(file(compiled('web1'), `${UNIT_DIR}/upkeep-backup.service`).content).not.toContain('ReadWritePaths');
    });

    it('passes every retention rule to the backup host as --keep-within rules, and to forget for a repository the host prunes itself', () => {
      const prune = file(compiled('backup1'), '/etc/upkeep/restic/clients/mail1.env').content!;
      expect(sourced(prune, 'RESTIC_REPOSITORY')).toBe('/srv/restic/mail1');
      expect(sourced(prune, 'UPKEEP_KEEP_WITHIN')).toBe('--keep-within 30d --keep-within-weekly 56d --keep-within-monthly 12m --keep-within-yearly 2y');
      expect(sourced(file(compiled('mail1'), '/etc/upkeep/restic/backup.env').content!, 'UPKEEP_KEEP_DAILY')).toBe('');
      const mail1 = host('mail1');
      const local: ResolvedHost = { ...mail1, backups: { ...mail1.backups!, repository: '/mnt/backup/mail1', repositoryHost: undefined, repositoryUser: undefined, repositoryPath: undefined } };
      const state = compileHost(resolvedFleet([local]), local);
      const env = file(state, '/etc/upkeep/restic/backup.env').content!;
      expect(['DAILY', 'WEEKLY', 'MONTHLY', 'YEARLY'].map((k) => sourced(env, `UPKEEP_KEEP_${k}`))).toEqual(['30', '8', '12', '2']);
      expect(state.units).toContain('upkeep-backup-forget.timer');
    });

    it('makes the backup host a receiver: per client a user allowed only the append-only server on its own directory, kept out of its own backup', () => {
      const backup1 = compiled('backup1');
      expect(file(backup1, '/etc/sysusers.d/upkeep-restic.conf').content).toContain('u restic-web1 - "upkeep backup receiver for web1" /srv/restic /bin/sh');
      const tmpfiles = file(backup1, '/etc/tmpfiles.d/upkeep-restic.conf').content!.split('\n');
      for (const client of ['mail1', 'monitor1', 'web-staging', 'web1']) expect(tmpfiles).toContain(`d /srv/restic/${client} 0700 restic-${client} restic-${client} -`);
      expect(tmpfiles.filter((l) => l.startsWith('d /srv/restic '))).toEqual(['d /srv/restic 0755 root root -']);
      const sshd = file(backup1, '/etc/ssh/sshd_config.d/upkeep-restic.conf').content!;
      expect(sshd).toContain(
        'Match User restic-web1\n  AuthorizedKeysFile /var/lib/upkeep/backup-clients/%u.keys\n  ForceCommand /usr/bin/rclone --config /dev/null serve restic --stdio --append-only /srv/restic/web1\n  DisableForwarding yes\n  PermitTTY no\n',
      );
      expect(sshd.match(/^Match User /gm)).toHaveLength(4);
      expect(backup1.units).toEqual(expect.arrayContaining(['upkeep-backup-prune-web1.timer', 'upkeep-backup-prune-mail1.timer']));
      const prune = file(backup1, `${UNIT_DIR}/upkeep-backup-prune-web1.service`).content!;
      for (const line of ['User=restic-web1', 'LoadCredential=password:/etc/upkeep/restic/clients/web1.password', 'ReadWritePaths=/srv/restic/web1', 'ProtectSystem=strict']) expect(prune).toContain(`${line}\n`);
      expect(file(backup1, '/etc/upkeep/restic/clients/web1.password')).toMatchObject({ mode: '0600', owner: 'root:root' });
      expect(backup1.packages).toEqual(expect.arrayContaining(['rclone', 'restic']));
      expect(file(backup1, '/etc/upkeep/restic/backup.excludes').content).toContain('/srv/restic/web1\n');
      expect(paths(compiled('web1'))).not.toContain('/etc/sysusers.d/upkeep-restic.conf');
    });

    describe('to a provisioned backup host with a volume', () => {
      // backup1 as Terraform creates it: no address or key in the policy, a volume for the repositories.
      const { address: _address, hostKey: _hostKey, ...existing } = host('backup1');
      const provisioned: ResolvedHost = { ...existing, provision: { serverType: 'cx22', image: 'debian-12', location: 'nbg1', volumeSize: 100 } };
      const withVolume = resolvedFleet([provisioned]);

      it('reaches it only at the address and with the key bin/apply pins on the client, never by its bare name', () => {
        const web1 = compiled('web1', withVolume);
        const env = file(web1, '/etc/upkeep/restic/backup.env').content!;
        expect(sourced(env, 'UPKEEP_RCLONE_PROGRAM')).toBe(
          'ssh -F /var/lib/upkeep/backup-host/ssh_config -i /var/lib/upkeep/backup/id_ed25519 -o UserKnownHostsFile=/var/lib/upkeep/backup-host/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=30 -o ServerAliveInterval=60 restic-web1@backup1',
        );
        expect(sourced(env, 'UPKEEP_BACKUP_HOST_PIN')).toBe('/var/lib/upkeep/backup-host');
        // Nothing compiled to pin: the plan cannot know the address or key.
        expect(paths(web1)).not.toContain('/etc/upkeep/restic/known_hosts');
        // A backup host whose address and key the policy gives is pinned in the plan, as before.
        expect(sourced(file(compiled('web1'), '/etc/upkeep/restic/backup.env').content!, 'UPKEEP_BACKUP_HOST_PIN')).toBe('');
      });

      it('keeps every repository on the volume: mounted at the backup root at boot, checked by the forced command and by retention', () => {
        const backup1 = compiled('backup1', withVolume);
        expect(backup1.units).toContain('upkeep-backup-volume.service');
        expect(file(backup1, `${UNIT_DIR}/upkeep-backup-volume.service`).content).toContain('ExecStart=/usr/local/lib/upkeep/backup-volume.sh "/srv/restic"\n');
        expect(paths(backup1)).toContain(`${RUNTIME_DIR}/backup-volume.sh`);
        const sshd = file(backup1, '/etc/ssh/sshd_config.d/upkeep-restic.conf').content!;
        expect(sshd).toContain(
          '  ForceCommand mountpoint -q /srv/restic || { echo "backup1: the backup volume is not mounted at /srv/restic; refusing to store backups on the root disk" >&2; exit 1; }; exec /usr/bin/rclone --config /dev/null serve restic --stdio --append-only /srv/restic/web1\n',
        );
        expect(sshd.match(/^  ForceCommand mountpoint -q \/srv\/restic \|\| /gm)).toHaveLength(4);
        const prune = file(backup1, `${UNIT_DIR}/upkeep-backup-prune-web1.service`).content!;
        for (const line of ['Requires=upkeep-backup-volume.service', 'After=upkeep-backup-volume.service', 'AssertPathIsMountPoint=/srv/restic']) expect(prune).toContain(`${line}\n`);
        // Without a volume, nothing of it.
        const plain = compiled('backup1');
        expect(plain.units).not.toContain('upkeep-backup-volume.service');
        expect(file(plain, '/etc/ssh/sshd_config.d/upkeep-restic.conf').content).not.toContain('mountpoint');
        expect(file(plain, `${UNIT_DIR}/upkeep-backup-prune-web1.service`).content).not.toContain('AssertPathIsMountPoint');
      });
    });

    it('backs the backup host itself up elsewhere, without an sftp command', () => {
      const env = file(compiled('backup1'), '/etc/upkeep/restic/backup.env').content!;
      expect(sourced(env, 'RESTIC_REPOSITORY')).toBe('s3:https://objects.example.net/upkeep-backup1');
      expect(sourced(env, 'UPKEEP_SFTP_COMMAND')).toBe('');
    });
  });

  it('derives each host\'s repository password from the policy\'s secret and its name, on the host and on the backup host alike', () => {
    const perHost = fleet.hosts.map((h) => (h.backups ? { ...h, backups: { ...h.backups, password: { env: 'RESTIC_FLEET_SECRET' }, sharedPassword: false } } : h));
    const state = (name: string) => compileHost(resolvedFleet(perHost), perHost.find((h) => h.name === name)!);
    const derived = { env: 'RESTIC_FLEET_SECRET', derive: 'upkeep restic repository web1' };
    expect(file(state('web1'), '/etc/upkeep/restic/backup.password').secret).toEqual(derived);
    expect(file(state('backup1'), '/etc/upkeep/restic/clients/web1.password').secret).toEqual(derived);
    expect(file(state('mail1'), '/etc/upkeep/restic/backup.password').secret).toEqual({ ...derived, derive: 'upkeep restic repository mail1' });
    // sharedPassword: the reference itself, as repositories made before per-host passwords need.
    expect(file(compiled('web1'), '/etc/upkeep/restic/backup.password').secret).toEqual({ env: 'RESTIC_PASSWORD_WEB1' });
  });

  describe('monitoring', () => {
    it('runs checks about other hosts on the monitor that is named for them, and not on the subject', () => {
      const monitor1 = compiled('monitor1');
      for (const unit of ['upkeep-check-web1-site.timer', 'upkeep-check-web1-tls.timer', 'upkeep-check-mail1-delivery.timer', 'upkeep-check-mail1-smtp.timer', 'upkeep-check-monitor1-dns.timer']) {
        expect(monitor1.units).toContain(unit);
      }
      expect(compiled('web1').units.filter((u) => u.startsWith('upkeep-check-web1-site'))).toEqual([]);
      expect(monitor1.packages).toEqual(expect.arrayContaining(['curl', 'openssl', 'bind9-dnsutils', 'smartmontools']));
    });

    it('hands policy text to the check through a quoted env file, so "$", quotes and "&" stay literal', () => {
      const env = file(compiled('monitor1'), '/etc/upkeep/checks/web1-site.env').content!;
      expect(sourced(env, 'UPKEEP_HTTP_URL')).toBe('https://www.example.net/health?a=1&b=$PATH');
      expect(sourced(env, 'UPKEEP_HTTP_BODY_MATCHES')).toBe(`it's "ok"`);
      expect(sourced(env, 'UPKEEP_ROUTES')).toBe('ops');
      expect(sourced(file(compiled('monitor1'), '/etc/upkeep/alert/ops.env').content!, 'UPKEEP_WEBHOOK')).toBe('https://alerts.example.net/hook?team=ops&x=$HOME');
    });

    it('fills in the model defaults the checks need', () => {
      const monitor1 = compiled('monitor1');
      expect(sourced(file(monitor1, '/etc/upkeep/checks/web1-tls.env').content!, 'UPKEEP_TLS_MIN_VALIDITY')).toBe(String(14 * 86400));
      expect(sourced(file(monitor1, '/etc/upkeep/checks/web1-site.env').content!, 'UPKEEP_HTTP_STATUS')).toBe('200');
      expect(sourced(file(monitor1, '/etc/upkeep/checks/mail1-smtp.env').content!, 'UPKEEP_SMTP_PORT')).toBe('25');
    });

    it('gives a mail-delivery check its IMAP server without a trailing slash, so the probe selects INBOX, not /INBOX', () => {
      const mail1 = host('mail1');
      const withSlash: ResolvedHost = {
        ...mail1,
        monitoring: { ...mail1.monitoring!, checks: mail1.monitoring!.checks.map((c) => (c.spec.kind === 'mail-delivery' ? { ...c, spec: { ...c.spec, imap: 'imaps://mail1.example.net:993/' } } : c)) },
      };
      const f = resolvedFleet([withSlash]);
      const env = file(compileHost(f, f.hosts.find((h) => h.name === 'monitor1')!), '/etc/upkeep/checks/mail1-delivery.env').content!;
      expect(sourced(env, 'UPKEEP_MAIL_IMAP')).toBe('imaps://mail1.example.net:993');
    });

    it('times checks exactly on their interval, without randomized delay', () => {
      const timer = file(compiled('web1'), `${UNIT_DIR}/upkeep-check-web1-disk.timer`).content!;
      expect(timer).toContain('OnUnitActiveSec=60s');
      expect(timer).toContain('AccuracySec=1s');
      expect(timer).not.toContain('RandomizedDelaySec');
    });

    it("records the monitor's heartbeat where its unprivileged liveness server may read it, and hides the host's state from that server", () => {
      const monitor: ResolvedHost = { ...host('monitor1'), monitoring: { ...host('monitor1').monitoring!, heartbeat: { url: { env: 'HEARTBEAT_URL' }, port: 9469 } } };
      const state = compileHost(resolvedFleet([monitor]), monitor);
      const heartbeat = file(state, `${UNIT_DIR}/upkeep-heartbeat.service`).content!;
      expect(heartbeat).toContain('\nStateDirectory=upkeep-liveness\nStateDirectoryMode=0755\n');
      const server = file(state, `${UNIT_DIR}/upkeep-liveness@.service`).content!;
      expect(server).toContain('\nDynamicUser=yes\n');
      expect(server).toContain('\nInaccessiblePaths=-/var/lib/upkeep\n');
    });

    it("allows a mail-delivery check its wait in every run: in the monitor heartbeat, and in how long an Alertmanager alert lasts", () => {
      const monitor: ResolvedHost = { ...host('monitor1'), monitoring: { ...host('monitor1').monitoring!, heartbeat: { url: { env: 'HEARTBEAT_URL' }, port: 9469 } } };
      const state = compileHost(resolvedFleet([monitor]), monitor);
      const delivery = host('mail1').monitoring!.checks.find((c) => c.spec.kind === 'mail-delivery')!;
      expect(delivery.intervalSeconds).toBe(60);
      // Its failing runs take maxDelay (5m) each, and the next starts when one ends.
      const watched = sourced(file(state, '/etc/upkeep/heartbeat.env').content!, 'UPKEEP_HEARTBEAT_CHECKS').split(' ');
      expect(watched).toContainEqual(`mail1-delivery:${2 * 60 + 300 + 5 + 60}`);
      expect(watched).toContainEqual(`web1-site:${2 * 60 + 30 + 60}`);
      expect(sourced(file(state, '/etc/upkeep/checks/mail1-delivery.env').content!, 'UPKEEP_CHECK_RESEND_SECONDS')).toBe(String(60 + 305));
      expect(sourced(file(state, '/etc/upkeep/checks/web1-site.env').content!, 'UPKEEP_CHECK_RESEND_SECONDS')).toBe(String(60 + 30));
    });

    it('names check units from host and check names reduced to safe words', () => {
      const odd: ResolvedHost = {
        ...host('web1'),
        monitoring: { ...host('web1').monitoring!, checks: [{ name: 'Front Page!', subject: 'web1', runsOn: 'web1', intervalSeconds: 60, spec: { kind: 'failed-units' } }] },
      };
      expect(compileHost(resolvedFleet([odd]), odd).units).toContain('upkeep-check-web1-front-page.timer');
    });
  });
});
