// Backups with restic: a daily backup, integrity checks and restore drills on every protected host.
//
// A repository on a fleet host (the backup host) is append-only by construction: each client logs
// in over ssh as its own user there, and sshd forces that user's one command, `rclone serve restic
// --stdio --append-only DIR` on the client's own repository. restic speaks to it as its "rclone"
// backend with the ssh command as the rclone program, so a client can add snapshots but never
// delete or overwrite anything, nor name another path. Retention (forget --prune) therefore runs on
// the backup host itself, as the client's user, by --keep-within rules relative to the newest
// snapshot, and refuses while any snapshot claims to be from the future: snapshots a compromised
// client forges cannot push the real ones out. A repository elsewhere (a URL) is pruned by its
// client, which is the only one that can.

import type { ResolvedBackups, ResolvedFleet, ResolvedHost } from '../policy/resolved.ts';
import { DEFAULTS } from '../policy/resolve.ts';
import { SFTP_REPOSITORY } from '../policy/validate.ts';
import { CONFIG_DIR, STATE_DIR, type FileSecret, type ManagedFile } from './desired-state.ts';
import { renderEnvFile } from './env-file.ts';
import { configFile, type HostPart } from './host-part.ts';
import { execArg, runtimeCommand, unitFile, type UnitSections } from './systemd.ts';

const RESTIC_DIR = `${CONFIG_DIR}/restic`;
/** Where a backup host keeps its clients' repositories (resolve confines them below it). */
const BACKUP_ROOT = DEFAULTS.repositoryRoot;
const BACKUP_STATE = `${STATE_DIR}/backup`;
/** The client's ssh key for its repository host; created on the host on first use, never shipped. */
const SSH_KEY = `${BACKUP_STATE}/id_ed25519`;
const KNOWN_HOSTS = `${RESTIC_DIR}/known_hosts`;
/** Files sampled by each restore drill. */
const DRILL_FILES = 20;

/**
 * Never worth keeping: kernel and runtime file systems, temporary files and caches (restic's own
 * cache included). Host state in /var/lib/upkeep is kept: it is small and says what was applied.
 * Mount points are not excluded: Hetzner mounts a server's volumes at /mnt/HC_Volume_<id>, where a
 * customer's data lives, and backups cross into every file system under a listed path (no
 * --one-file-system), so the pseudo file systems are kept out here by where they are mounted.
 */
const BUILT_IN_EXCLUDES = ['/dev', '/proc', '/sys', '/run', '/tmp', '/var/tmp', '/var/cache', '/lost+found', '/swapfile'];

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

/**
 * Where a provisioned backup host is pinned on its clients: its address and port (ssh_config) and
 * host key (known_hosts) are only known once Terraform made it and bin/apply rotated its key, so
 * bin/apply writes both here from its pinned inventory (lib/apply/backup-keys.ts). Host state, not
 * a compiled file: plans stay the same whatever address or key the server got.
 */
export const BACKUP_HOST_PIN_DIR = `${STATE_DIR}/backup-host`;

interface SshTarget {
  readonly host: string;
  readonly port: number;
  readonly hostKey?: string;
  /** The address and key come from bin/apply's pin in BACKUP_HOST_PIN_DIR, not from the policy. */
  readonly pinnedAtApply?: boolean;
}

/** Where ssh connects for a repository: the repository host's address when the fleet knows it. */
function sshTarget(fleet: ResolvedFleet, repositoryHost: string | undefined, named: string): SshTarget {
  const target = repositoryHost === undefined ? undefined : hostsByName(fleet).get(repositoryHost);
  // A provisioned backup host: its name is only a label here, ssh_config maps it to the pinned address.
  if (target !== undefined && target.address === undefined && target.provision !== undefined) return { host: target.name, port: target.port, pinnedAtApply: true };
  const ssh = { host: target?.address ?? named, port: target?.port ?? 22, hostKey: target?.hostKey };
  if (!/^[A-Za-z0-9.:-]+$/.test(ssh.host)) throw new Error(`backup host address ${JSON.stringify(ssh.host)} cannot be used in an ssh command`);
  return ssh;
}

function knownHosts(ssh: SshTarget): ManagedFile[] {
  if (!ssh.hostKey) return [];
  const name = ssh.port === 22 ? ssh.host : `[${ssh.host}]:${ssh.port}`;
  return [configFile(KNOWN_HOSTS, `${name} ${ssh.hostKey}\n`)];
}

/** The ssh command line to a repository host: pinned host key, no prompts, no agent, the client's own key. */
function sshCommand(ssh: SshTarget, user: string): string[] {
  // -F: the pinned address and port from bin/apply, and nothing of /etc/ssh/ssh_config; ssh stops
  // when the file is missing, and the name alone is not in the known_hosts beside it.
  const config = ssh.pinnedAtApply ? ['-F', `${BACKUP_HOST_PIN_DIR}/ssh_config`] : [];
  const knownHostsFile = ssh.pinnedAtApply ? `${BACKUP_HOST_PIN_DIR}/known_hosts` : KNOWN_HOSTS;
  const port = ssh.pinnedAtApply ? [] : ['-p', String(ssh.port)];
  return [
    'ssh', ...config, '-i', SSH_KEY, '-o', `UserKnownHostsFile=${knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes',
    '-o', 'ConnectTimeout=30', '-o', 'ServerAliveInterval=60', ...port, `${user}@${ssh.host}`,
  ];
}

/** How the client reaches its repository: restic options for backup.sh, and what ssh must trust. */
function transport(fleet: ResolvedFleet, backups: ResolvedBackups): { env: Record<string, string>; files: ManagedFile[]; ssh: boolean } {
  if (backups.repositoryHost !== undefined && backups.repositoryUser !== undefined) {
    // The backup host forces the rclone command; whatever restic appends is ignored there.
    const ssh = sshTarget(fleet, backups.repositoryHost, backups.repositoryHost);
    return {
      env: { UPKEEP_RCLONE_PROGRAM: sshCommand(ssh, backups.repositoryUser).join(' '), UPKEEP_SSH_KEY: SSH_KEY, ...(ssh.pinnedAtApply && { UPKEEP_BACKUP_HOST_PIN: BACKUP_HOST_PIN_DIR }) },
      files: knownHosts(ssh),
      ssh: true,
    };
  }
  const sftp = parseSftp(backups.repository);
  if (sftp) {
    const ssh = { ...sshTarget(fleet, undefined, sftp.host), ...(backups.repositoryHostKey !== undefined && { hostKey: backups.repositoryHostKey }) };
    return { env: { UPKEEP_SFTP_COMMAND: [...sshCommand(ssh, sftp.user), '-s', 'sftp'].join(' '), UPKEEP_SSH_KEY: SSH_KEY }, files: knownHosts(ssh), ssh: true };
  }
  return { env: {}, files: [], ssh: false };
}

/** The password of `host`'s repository: derived from the policy's secret and the host's name, unless shared. */
export function repositoryPassword(backups: ResolvedBackups, host: string): FileSecret {
  return backups.sharedPassword ? backups.password : { ...backups.password, derive: `upkeep restic repository ${host}` };
}

/** Backup jobs for a host with a backup policy. */
export function compileBackups(fleet: ResolvedFleet, host: ResolvedHost, backups: ResolvedBackups): HostPart {
  const reach = transport(fleet, backups);
  // Only the backup host can prune a repository it serves append-only.
  const prunesItself = backups.repositoryHost === undefined;
  const { retention } = backups;
  const env = renderEnvFile(`restic repository of ${host.name}, for backup.sh.`, {
    RESTIC_REPOSITORY: backups.repository,
    RESTIC_PASSWORD_FILE: `${RESTIC_DIR}/backup.password`,
    RESTIC_CACHE_DIR: '/var/cache/upkeep/restic',
    ...reach.env,
    ...(prunesItself
      ? { UPKEEP_KEEP_DAILY: retention.daily, UPKEEP_KEEP_WEEKLY: retention.weekly, UPKEEP_KEEP_MONTHLY: retention.monthly, UPKEEP_KEEP_YEARLY: retention.yearly }
      : {}),
    UPKEEP_CHECK_SUBSET: backups.checkReadDataSubset,
    UPKEEP_DRILL_FILES: DRILL_FILES,
  });
  // A repository on a local path (a mounted disk) is the one place the read-only jobs write to.
  const local = /^(?:local:)?(\/.*)$/.exec(backups.repository)?.[1];
  if (local !== undefined && /\s/.test(local)) throw new Error(`local repository path ${JSON.stringify(local)} must not contain spaces`);
  // A host that stores other hosts' repositories does not copy them into its own backup, nor its
  // own local repository (a mounted disk, under /mnt say) into itself.
  const heldRepositories = [...(local === undefined ? [] : [local.replace(/(.)\/+$/, '$1')]), ...receivedRepositories(fleet, host).map((r) => r.path)];
  const files: ManagedFile[] = [
    configFile(`${RESTIC_DIR}/backup.env`, env),
    { path: `${RESTIC_DIR}/backup.password`, mode: '0600', owner: 'root:root', secret: repositoryPassword(backups, host.name) },
    configFile(`${RESTIC_DIR}/backup.paths`, lines(backups.paths)),
    configFile(`${RESTIC_DIR}/backup.excludes`, lines([...new Set([...BUILT_IN_EXCLUDES, ...heldRepositories, ...backups.exclude])])),
    ...reach.files,
    ...job('upkeep-backup', 'back up files with restic', 'backup', backups.schedule, '30min', local),
    ...(prunesItself ? job('upkeep-backup-forget', 'apply backup retention', 'forget', 'Sun *-*-* 03:00:00', '30min', local) : []),
    ...job('upkeep-backup-check', `check the backup repository (read ${backups.checkReadDataSubset})`, 'check', backups.checkSchedule, '30min', local),
    ...job('upkeep-restore-drill', 'restore a sample of files from the latest snapshot and verify them', 'drill', backups.drillSchedule, '30min', local),
  ];
  return {
    files,
    units: ['upkeep-backup-check.timer', ...(prunesItself ? ['upkeep-backup-forget.timer'] : []), 'upkeep-backup.timer', 'upkeep-restore-drill.timer'],
    packages: ['restic', ...(reach.ssh ? ['openssh-client'] : [])],
    scripts: ['backup.sh'],
  };
}

function lines(items: readonly string[]): string {
  for (const item of items) if (/[\n\r]/.test(item)) throw new Error(`backup path or pattern spans lines: ${JSON.stringify(item)}`);
  return `${items.join('\n')}\n`;
}

/** A client's repository on a fleet host. */
interface ReceivedRepository {
  readonly client: string;
  readonly user: string;
  readonly path: string;
  readonly backups: ResolvedBackups;
}

// Indexes built once per fleet: looking through the whole fleet for each host made compiling
// quadratic in the number of hosts (as checksRunOn in monitoring.ts).
const byName = new WeakMap<ResolvedFleet, ReadonlyMap<string, ResolvedHost>>();
const receivedByHost = new WeakMap<ResolvedFleet, ReadonlyMap<string, readonly ReceivedRepository[]>>();

function hostsByName(fleet: ResolvedFleet): ReadonlyMap<string, ResolvedHost> {
  let index = byName.get(fleet);
  if (index === undefined) {
    // The first of a name, as Array.find gave.
    const hosts = new Map<string, ResolvedHost>();
    for (const h of fleet.hosts) if (!hosts.has(h.name)) hosts.set(h.name, h);
    index = hosts;
    byName.set(fleet, index);
  }
  return index;
}

/** Repositories of other fleet hosts that live on `host`, by client name. */
function receivedRepositories(fleet: ResolvedFleet, host: ResolvedHost): readonly ReceivedRepository[] {
  let index = receivedByHost.get(fleet);
  if (index === undefined) {
    const received = new Map<string, ReceivedRepository[]>();
    for (const h of fleet.hosts) {
      const b = h.backups;
      if (b?.repositoryHost === undefined || h.name === b.repositoryHost || b.repositoryUser === undefined || b.repositoryPath === undefined) continue;
      const on = received.get(b.repositoryHost) ?? [];
      on.push({ client: h.name, user: b.repositoryUser, path: b.repositoryPath, backups: b });
      received.set(b.repositoryHost, on);
    }
    for (const on of received.values()) on.sort((a, b) => (a.client < b.client ? -1 : 1));
    index = received;
    receivedByHost.set(fleet, index);
  }
  return index.get(host.name) ?? [];
}

/** Public keys of the clients allowed to log in as a receiving user, one file per user. */
export const RECEIVER_KEYS_DIR = `${STATE_DIR}/backup-clients`;
/** Per client on a backup host: its repository's settings and password, for pruning. */
const CLIENTS_DIR = `${RESTIC_DIR}/clients`;

/** restic --keep-within* rules for a retention; every one is relative to the newest snapshot. */
export function keepWithin(retention: ResolvedBackups['retention']): string[] {
  const rules: string[] = [];
  // Every snapshot of the daily horizon is kept (not one per day): a forged snapshot later on the
  // same day must not stand in for the real one.
  if (retention.daily > 0) rules.push('--keep-within', `${retention.daily}d`);
  if (retention.weekly > 0) rules.push('--keep-within-weekly', `${retention.weekly * 7}d`);
  if (retention.monthly > 0) rules.push('--keep-within-monthly', `${retention.monthly}m`);
  if (retention.yearly > 0) rules.push('--keep-within-yearly', `${retention.yearly}y`);
  if (rules.length === 0) throw new Error('a retention without any rule would forget every snapshot');
  return rules;
}

/** Retention of one client's repository, run on the backup host as the client's user; `volume`: the mount point it must be on. */
function pruneJob(r: ReceivedRepository, volume: string | undefined): ManagedFile[] {
  const name = `upkeep-backup-prune-${r.client}`;
  const env = renderEnvFile(`retention of ${r.client}'s repository, for backup-prune.sh.`, {
    RESTIC_REPOSITORY: r.path,
    UPKEEP_KEEP_WITHIN: keepWithin(r.backups.retention).join(' '),
  });
  return [
    configFile(`${CLIENTS_DIR}/${r.client}.env`, env),
    // Readable by root only; systemd hands it to the job as a credential.
    { path: `${CLIENTS_DIR}/${r.client}.password`, mode: '0600', owner: 'root:root', secret: repositoryPassword(r.backups, r.client) },
    unitFile(`${name}.service`, {
      Unit: {
        Description: `upkeep: apply backup retention to ${r.client}'s repository`,
        // Never on the root disk's directory under an unmounted volume: fail, and say so.
        ...(volume !== undefined && { Requires: VOLUME_UNIT, After: VOLUME_UNIT, AssertPathIsMountPoint: volume }),
      },
      Service: {
        Type: 'oneshot',
        // The repository's own user, so that everything pruning writes stays the client's server's to read.
        User: r.user,
        Group: r.user,
        EnvironmentFile: `${CLIENTS_DIR}/${r.client}.env`,
        LoadCredential: `password:${CLIENTS_DIR}/${r.client}.password`,
        ExecStart: runtimeCommand('backup-prune.sh'),
        ...HARDENING,
        StateDirectory: undefined,
        CacheDirectory: `upkeep/prune-${r.client}`,
        ProtectHome: true,
        ReadWritePaths: r.path,
      },
    }),
    unitFile(`${name}.timer`, {
      Unit: { Description: `upkeep: apply backup retention to ${r.client}'s repository (daily)` },
      Timer: { OnCalendar: '*-*-* 04:00:00', Persistent: true, RandomizedDelaySec: '30min', AccuracySec: '1min' },
      Install: { WantedBy: 'timers.target' },
    }),
  ];
}

/**
 * What a repository host needs to receive backups: a user per client (sysusers.d) that owns the
 * client's repository directory (tmpfiles.d), an sshd rule that lets that user run nothing but the
 * append-only rclone server on that directory, and the retention jobs. Client keys are created on
 * the clients (`backup.sh key` prints one); the applier collects them into
 * RECEIVER_KEYS_DIR/<user>.keys, which is host state rather than a compiled file.
 */
export function compileBackupReceiver(fleet: ResolvedFleet, host: ResolvedHost): HostPart | undefined {
  const repositories = receivedRepositories(fleet, host);
  if (repositories.length === 0) return undefined;
  // A backup host with a volume keeps every repository on it: the backup root is its mount point.
  const volume = host.provision?.volumeSize !== undefined ? BACKUP_ROOT : undefined;
  if (volume !== undefined) {
    const outside = repositories.find((r) => !r.path.startsWith(`${volume}/`));
    if (outside) throw new Error(`${outside.client}'s repository ${outside.path} is not on ${host.name}'s backup volume (${volume})`);
  }
  const parentOf = (path: string) => path.replace(/\/[^/]+$/, '') || '/';
  // A real shell: sshd runs the forced command through it (nologin would refuse).
  const sysusers = repositories.map((r) => `u ${r.user} - "upkeep backup receiver for ${r.client}" ${parentOf(r.path)} /bin/sh`).join('\n');
  // Parents belong to root, so that with one user per client no client can touch another's repository.
  const tmpfiles = [
    ...[...new Set(repositories.map((r) => parentOf(r.path)))].sort().map((parent) => `d ${parent} 0755 root root -`),
    ...repositories.map((r) => `d ${r.path} 0700 ${r.user} ${r.user} -`),
  ].join('\n');
  // As authorized_keys' restrict,command="...": no forwarding, tty, rc file or sftp; one command.
  const serve = (path: string) => `/usr/bin/rclone --config /dev/null serve restic --stdio --append-only ${path}`;
  // With a volume, the forced command first checks it is mounted: rclone would otherwise create the
  // repository on the root disk, under the empty mount point, and fill it.
  const forced = (path: string) =>
    volume === undefined ? serve(path) : `mountpoint -q ${volume} || { echo "${host.name}: the backup volume is not mounted at ${volume}; refusing to store backups on the root disk" >&2; exit 1; }; exec ${serve(path)}`;
  const sshd = repositories
    .map((r) => `Match User ${r.user}\n  AuthorizedKeysFile ${RECEIVER_KEYS_DIR}/%u.keys\n  ForceCommand ${forced(r.path)}\n  DisableForwarding yes\n  PermitTTY no\n  PermitUserRC no\n  PermitTunnel no\n`)
    .join('');
  return {
    files: [
      configFile('/etc/sysusers.d/upkeep-restic.conf', `# Managed by upkeep: users that receive restic backups, one per client.\n${sysusers}\n`),
      configFile('/etc/tmpfiles.d/upkeep-restic.conf', `# Managed by upkeep: restic repositories of other hosts.\n${tmpfiles}\n`),
      configFile('/etc/ssh/sshd_config.d/upkeep-restic.conf', `# Managed by upkeep: backup users may only add to their own repository.\n${sshd}`),
      ...repositories.flatMap((r) => pruneJob(r, volume)),
      ...(volume === undefined ? [] : [volumeMount(volume)]),
    ],
    units: [...repositories.map((r) => `upkeep-backup-prune-${r.client}.timer`), ...(volume === undefined ? [] : [VOLUME_UNIT])],
    packages: ['openssh-server', 'rclone', 'restic'],
    scripts: ['backup-prune.sh', ...(volume === undefined ? [] : ['backup-volume.sh'])],
  };
}

/** The unit that mounts a backup host's volume at the backup root (bin/apply starts it before creating repositories). */
export const VOLUME_UNIT = 'upkeep-backup-volume.service';

/**
 * The volume (Terraform's hcloud_volume, attached without Hetzner's automount) mounted at the
 * backup root at boot. A missing volume fails the unit, and everything that would write to the
 * repositories checks the mount point rather than trusting the unit's state.
 */
function volumeMount(root: string): ManagedFile {
  return unitFile(VOLUME_UNIT, {
    Unit: { Description: `upkeep: mount the backup volume at ${root}, where the repositories live`, After: 'local-fs.target', Before: 'ssh.service' },
    Service: { Type: 'oneshot', RemainAfterExit: true, ExecStart: runtimeCommand('backup-volume.sh', root) },
    Install: { WantedBy: 'multi-user.target' },
  });
}
