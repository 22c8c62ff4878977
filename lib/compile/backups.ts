// Backups with restic: a daily backup, retention (forget --prune), integrity checks and restore
// drills on every protected host, and on a fleet host that holds repositories, an sftp-only user
// that owns them.

import type { ResolvedBackups, ResolvedFleet, ResolvedHost } from '../policy/resolved.ts';
import { SFTP_REPOSITORY } from '../policy/validate.ts';
import { CONFIG_DIR, STATE_DIR, type ManagedFile } from './desired-state.ts';
import { renderEnvFile } from './env-file.ts';
import { configFile, type HostPart } from './host-part.ts';
import { execArg, runtimeCommand, unitFile, type UnitSections } from './systemd.ts';

const RESTIC_DIR = `${CONFIG_DIR}/restic`;
const BACKUP_STATE = `${STATE_DIR}/backup`;
/** The client's ssh key for sftp repositories; created on the host on first use, never shipped. */
const SFTP_KEY = `${BACKUP_STATE}/id_ed25519`;
const KNOWN_HOSTS = `${RESTIC_DIR}/known_hosts`;
/** Files sampled by each restore drill. */
const DRILL_FILES = 20;

/**
 * Never worth keeping: kernel and runtime file systems, temporary files and caches (restic's own
 * cache included). Host state in /var/lib/upkeep is kept: it is small and says what was applied.
 */
const BUILT_IN_EXCLUDES = ['/dev', '/proc', '/sys', '/run', '/tmp', '/var/tmp', '/var/cache', '/mnt', '/media', '/lost+found', '/swapfile'];

interface SftpRepository {
  readonly user: string;
  readonly host: string;
  readonly path: string;
}

/** The parts of an "sftp:user@host:/path" repository, or undefined for any other kind. */
function parseSftp(repository: string): SftpRepository | undefined {
  if (!repository.startsWith('sftp:')) return undefined;
  const m = SFTP_REPOSITORY.exec(repository);
  if (!m) throw new Error(`sftp repository ${JSON.stringify(repository)} is not of the form sftp:user@host:/absolute/path`);
  return { user: m[1] ?? 'root', host: m[2], path: m[3].replace(/\/+$/, '') };
}

const HARDENING = {
  ProtectSystem: 'strict',
  ProtectHome: 'read-only',
  PrivateTmp: true,
  NoNewPrivileges: true,
  StateDirectory: 'upkeep/backup',
  CacheDirectory: 'upkeep/restic',
  Nice: 19,
  IOSchedulingClass: 'idle',
  CPUSchedulingPolicy: 'batch',
} as const;

function job(name: string, description: string, job: 'backup' | 'forget' | 'check' | 'drill', schedule: string, delay: string, localRepository?: string): ManagedFile[] {
  const service: UnitSections = {
    Unit: { Description: `upkeep: ${description}`, Wants: 'network-online.target', After: 'network-online.target' },
    Service: {
      Type: 'oneshot',
      // The first backup creates a local repository's directory, outside the sandbox ("+"),
      // because the sandbox cannot be set up around a path that does not exist yet.
      ExecStartPre: localRepository && job === 'backup' ? `+/usr/bin/mkdir -p -m 0700 ${execArg(localRepository)}` : undefined,
      ExecStart: runtimeCommand('backup.sh', job),
      ...HARDENING,
      ReadWritePaths: localRepository && `-${localRepository}`,
    },
  };
  return [
    unitFile(`${name}.service`, service),
    unitFile(`${name}.timer`, {
      Unit: { Description: `upkeep: ${description} (${schedule})` },
      Timer: { OnCalendar: schedule, Persistent: true, RandomizedDelaySec: delay, AccuracySec: '1min' },
      Install: { WantedBy: 'timers.target' },
    }),
  ];
}

/** Where ssh connects for an sftp repository: the repository host's address when the fleet knows it. */
function sshTarget(fleet: ResolvedFleet, backups: ResolvedBackups, sftp: SftpRepository): { host: string; port: number; hostKey?: string } {
  const target = fleet.hosts.find((h) => h.name === backups.repositoryHost);
  return { host: target?.address ?? sftp.host, port: target?.port ?? 22, hostKey: target?.hostKey };
}

function knownHosts(ssh: { host: string; port: number; hostKey?: string }): ManagedFile[] {
  if (!ssh.hostKey) return [];
  const name = ssh.port === 22 ? ssh.host : `[${ssh.host}]:${ssh.port}`;
  return [configFile(KNOWN_HOSTS, `${name} ${ssh.hostKey}\n`)];
}

/** Backup jobs for a host with a backup policy. */
export function compileBackups(fleet: ResolvedFleet, host: ResolvedHost, backups: ResolvedBackups): HostPart {
  const sftp = parseSftp(backups.repository);
  const ssh = sftp && sshTarget(fleet, backups, sftp);
  if (ssh && !/^[A-Za-z0-9.:-]+$/.test(ssh.host)) throw new Error(`backup host address ${JSON.stringify(ssh.host)} cannot be used in an ssh command`);
  // Pinned host key, no prompts, no agent: a changed key stops the backup instead of trusting it.
  const sftpCommand = sftp && ssh && [
    'ssh', '-i', SFTP_KEY, '-o', `UserKnownHostsFile=${KNOWN_HOSTS}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes',
    '-o', 'ConnectTimeout=30', '-o', 'ServerAliveInterval=60', '-p', String(ssh.port), `${sftp.user}@${ssh.host}`, '-s', 'sftp',
  ].join(' ');
  const { retention } = backups;
  const env = renderEnvFile(`restic repository of ${host.name}, for backup.sh.`, {
    RESTIC_REPOSITORY: backups.repository,
    RESTIC_PASSWORD_FILE: `${RESTIC_DIR}/backup.password`,
    RESTIC_CACHE_DIR: '/var/cache/upkeep/restic',
    ...(sftpCommand ? { UPKEEP_SFTP_COMMAND: sftpCommand, UPKEEP_SFTP_KEY: SFTP_KEY } : {}),
    UPKEEP_KEEP_DAILY: retention.daily,
    UPKEEP_KEEP_WEEKLY: retention.weekly,
    UPKEEP_KEEP_MONTHLY: retention.monthly,
    UPKEEP_KEEP_YEARLY: retention.yearly,
    UPKEEP_CHECK_SUBSET: backups.checkReadDataSubset,
    UPKEEP_DRILL_FILES: DRILL_FILES,
  });
  const lines = (items: readonly string[]) => {
    for (const item of items) if (/[\n\r]/.test(item)) throw new Error(`backup path or pattern spans lines: ${JSON.stringify(item)}`);
    return `${items.join('\n')}\n`;
  };
  // A repository on a local path (a mounted disk) is the one place the read-only jobs write to.
  const local = /^(?:local:)?(\/.*)$/.exec(backups.repository)?.[1];
  if (local !== undefined && /\s/.test(local)) throw new Error(`local repository path ${JSON.stringify(local)} must not contain spaces`);
  // A host that stores other hosts' repositories does not copy them into its own backup.
  const heldRepositories = receivedRepositories(fleet, host).map((r) => r.path);
  const files: ManagedFile[] = [
    configFile(`${RESTIC_DIR}/backup.env`, env),
    { path: `${RESTIC_DIR}/backup.password`, mode: '0600', owner: 'root:root', secret: backups.password },
    configFile(`${RESTIC_DIR}/backup.paths`, lines(backups.paths)),
    configFile(`${RESTIC_DIR}/backup.excludes`, lines([...new Set([...BUILT_IN_EXCLUDES, ...heldRepositories, ...backups.exclude])])),
    ...(ssh ? knownHosts(ssh) : []),
    ...job('upkeep-backup', 'back up files with restic', 'backup', backups.schedule, '30min', local),
    ...job('upkeep-backup-forget', 'apply backup retention', 'forget', 'Sun *-*-* 03:00:00', '30min', local),
    ...job('upkeep-backup-check', `check the backup repository (read ${backups.checkReadDataSubset})`, 'check', backups.checkSchedule, '30min', local),
    ...job('upkeep-restore-drill', 'restore a sample of files from the latest snapshot and verify them', 'drill', backups.drillSchedule, '30min', local),
  ];
  return {
    files,
    units: ['upkeep-backup-check.timer', 'upkeep-backup-forget.timer', 'upkeep-backup.timer', 'upkeep-restore-drill.timer'],
    packages: ['restic', ...(sftp ? ['openssh-client'] : [])],
    scripts: ['backup.sh'],
  };
}

/** sftp repositories of other fleet hosts that live on `host`. */
function receivedRepositories(fleet: ResolvedFleet, host: ResolvedHost): SftpRepository[] {
  return fleet.hosts
    .filter((h) => h.name !== host.name && h.backups?.repositoryHost === host.name)
    .map((h) => parseSftp(h.backups!.repository))
    .filter((r): r is SftpRepository => r !== undefined)
    .sort((a, b) => a.path.localeCompare(b.path));
}

/** Public keys of the clients allowed to log in as a receiving user, one file per user. */
export const RECEIVER_KEYS_DIR = `${STATE_DIR}/backup-clients`;

/**
 * What a repository host needs to receive backups: the sftp users (sysusers.d), their repository
 * directories (tmpfiles.d) and an sshd rule that confines them to sftp. Client keys are created on
 * the clients (`backup.sh key` prints one); the applier collects them into
 * RECEIVER_KEYS_DIR/<user>.keys, which is host state rather than a compiled file.
 */
export function compileBackupReceiver(fleet: ResolvedFleet, host: ResolvedHost): HostPart | undefined {
  const repositories = receivedRepositories(fleet, host);
  if (repositories.length === 0) return undefined;
  const users = [...new Set(repositories.map((r) => r.user))].sort();
  if (users.includes('root')) throw new Error(`host ${host.name} would receive backups as root; give the sftp repository a user`);
  const homeOf = (user: string) => {
    const parents = [...new Set(repositories.filter((r) => r.user === user).map((r) => r.path.replace(/\/[^/]+$/, '') || '/'))];
    if (parents.length !== 1 || parents[0] === '/') throw new Error(`sftp user ${user} on ${host.name} needs its repositories under one directory`);
    return parents[0];
  };
  const sysusers = users.map((u) => `u ${u} - "upkeep backup receiver" ${homeOf(u)} /usr/sbin/nologin`).join('\n');
  // Parents belong to root, so that with one user per client no client can touch another's repository.
  const tmpfiles = [
    ...[...new Set(users.map(homeOf))].sort().map((home) => `d ${home} 0755 root root -`),
    ...repositories.map((r) => `d ${r.path} 0700 ${r.user} ${r.user} -`),
  ].join('\n');
  const sshd = users
    .map((u) => `Match User ${u}\n  AuthorizedKeysFile ${RECEIVER_KEYS_DIR}/%u.keys\n  ForceCommand internal-sftp\n  AllowTcpForwarding no\n  AllowAgentForwarding no\n  X11Forwarding no\n  PermitTTY no\n`)
    .join('');
  return {
    files: [
      configFile('/etc/sysusers.d/upkeep-restic.conf', `# Managed by upkeep: users that receive restic backups over sftp.\n${sysusers}\n`),
      configFile('/etc/tmpfiles.d/upkeep-restic.conf', `# Managed by upkeep: restic repositories of other hosts.\n${tmpfiles}\n`),
      configFile('/etc/ssh/sshd_config.d/upkeep-restic.conf', `# Managed by upkeep: backup users may only use sftp.\n${sshd}`),
    ],
    units: [],
    packages: ['openssh-server'],
    scripts: [],
  };
}
