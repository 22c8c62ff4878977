// The policy model: what a team writes, in TypeScript or YAML.
//
// Every option is readonly and documents its default. Names of groups and hosts are type
// parameters so that references (`after`, `group`, a backup target, a check's `from`) are checked
// by the TypeScript compiler; YAML policies get the same checks from validation.

/** A duration: a number and a unit, e.g. "30s", "15m", "24h", "7d", "2w". */
export type Duration = `${number}${'s' | 'm' | 'h' | 'd' | 'w'}`;

/** Wall-clock time of day, 24 h, "HH:MM". */
export type TimeOfDay = `${number}:${number}`;

export type Weekday = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';

/** Roles decide firewall rules, default checks and which hosts the whole-system rules look at. */
export type Role = 'web' | 'mail' | 'dns' | 'backup' | 'monitor' | 'app' | 'db';

export type PackageFamily = 'apt' | 'dnf';

/** A secret is never written into a policy: it is a reference resolved at apply time. */
export type SecretRef =
  /** Read from this environment variable of the applier. */
  | { readonly env: string }
  /** Read from this file on the applier's machine (path relative to the policy file or absolute). */
  | { readonly file: string };

interface WindowCommon {
  /** Start of the window, local time in `timeZone`. */
  readonly start: TimeOfDay;
  /** How long the window stays open. At most 24 h. */
  readonly duration: Duration;
  /** IANA time zone of `start`. @default "UTC" */
  readonly timeZone?: string;
  /** Dates ("YYYY-MM-DD", local) on which the window does not open, e.g. a sales weekend. @default [] */
  readonly blackouts?: readonly string[];
}

/** A window that opens on the given weekdays every week. */
export interface WeeklyWindow extends WindowCommon {
  readonly every: 'week';
  readonly days: readonly Weekday[];
}

/** A window that opens once a month, on the nth weekday (1..4 or "last"), e.g. the first Sunday. */
export interface MonthlyWindow extends WindowCommon {
  readonly every: 'month';
  readonly nth: 1 | 2 | 3 | 4 | 'last';
  readonly weekday: Weekday;
}

export type MaintenanceWindow = WeeklyWindow | MonthlyWindow;

/** What to do about a vulnerability that has no fixed package yet. */
export type MitigationAction =
  | { readonly maskUnit: string }
  | { readonly stopUnit: string }
  | { readonly firewallPort: number; readonly protocol?: 'tcp' | 'udp' }
  /** Write this drop-in file (e.g. a config switch that disables the vulnerable feature). */
  | { readonly dropIn: { readonly path: string; readonly content: string } };

export interface Mitigation {
  /** Advisory id, e.g. "CVE-2026-1234". */
  readonly id: string;
  /** The package whose fix is awaited. */
  readonly package: string;
  /** The mitigation is reverted once the installed version is at least this one. */
  readonly fixedIn?: string;
  readonly action: MitigationAction;
}

export interface UpdatePolicy {
  /** Routine updates run in this window; so do reboots and disruptive restarts. */
  readonly window?: MaintenanceWindow;
  /** Security updates. */
  readonly security?: {
    /** A fixed package must be installed within this time of becoming available. @default "24h" */
    readonly deadline?: Duration;
    /** How often hosts look for security updates. @default "1h" */
    readonly checkEvery?: Duration;
  };
  /** Reboot policy; reboots only ever happen inside `window`. @default "when-needed" */
  readonly reboot?: 'never' | 'when-needed' | 'always';
  /**
   * Where updates come from. "stable": a release with a separate security archive; security
   * waves take fixes from it only. "rolling": a rolling-release distribution (Debian testing or
   * unstable, Arch-like) with no security archive, where any update may carry a security fix:
   * every update is treated as one, so it goes through staging on every security wave and reaches
   * production within the security deadline (disruptive ones still wait for the window).
   * @default "stable"
   */
  readonly channel?: 'stable' | 'rolling';
  /** Packages that are never upgraded automatically. @default [] */
  readonly hold?: readonly string[];
  /** Declared mitigations for vulnerabilities without a fix. @default [] */
  readonly mitigations?: readonly Mitigation[];
}

/** Keep rules, as restic's `forget --keep-*`. */
export interface Retention {
  /** @default 90 (three months of daily snapshots) */
  readonly daily?: number;
  readonly weekly?: number;
  readonly monthly?: number;
  readonly yearly?: number;
}

export type BackupRepository<H extends string = string> =
  /** A repository on a host of this fleet, reached over ssh and served append-only; `path` must lie inside the backup root (/srv/restic). */
  | { readonly host: H; readonly path?: string }
  /**
   * Any restic repository URL (sftp:, s3:, rest:, b2: ...). An sftp: repository needs `hostKey`,
   * its server's ssh host public key ("ssh-ed25519 AAAA..."), which clients pin in known_hosts.
   */
  | { readonly url: string; readonly hostKey?: string };

export interface BackupPolicy<H extends string = string> {
  /** systemd OnCalendar expression. @default "*-*-* 01:30:00" (daily) */
  readonly schedule?: string;
  readonly retention?: Retention;
  /** What to back up. @default ["/"] (all files, mounted volumes included; kernel and runtime file systems (/dev, /proc, /sys, /run), temporary files and caches are excluded). Each must exist: a missing one fails the backup. A symlink is backed up with what it points to. */
  readonly paths?: readonly string[];
  /** restic exclude patterns, added to the built-in ones. @default [] */
  readonly exclude?: readonly string[];
  readonly repository?: BackupRepository<H>;
  /**
   * The secret the repository passwords come from: each host's password is derived from it and the
   * host's name (HMAC-SHA256), so a host can read no other host's backups. @see sharedPassword
   */
  readonly password?: SecretRef;
  /**
   * Use `password` itself as every host's repository password (repositories made before upkeep
   * derived one per host). @default false
   */
  readonly sharedPassword?: boolean;
  /** Repository integrity check. */
  readonly check?: {
    /** @default "Sun *-*-* 05:00:00" (weekly) */
    readonly schedule?: string;
    /** Share of pack data read back on each check. @default "5%" */
    readonly readDataSubset?: `${number}%`;
  };
  /** Automatic restore drill: restore from the latest snapshot and verify it. */
  readonly drill?: {
    /** @default "Sat *-*-* 06:00:00" (weekly) */
    readonly schedule?: string;
  };
}

export type CheckKind =
  | 'http'
  | 'mail-delivery'
  | 'smtp'
  | 'dns'
  | 'tls-expiry'
  | 'smart'
  | 'cpu-temperature'
  | 'disk-usage'
  | 'failed-units'
  | 'backup-freshness'
  | 'security-updates'
  | 'reboot-required'
  | 'monitor-heartbeat';

interface CheckCommon<H extends string> {
  /** Run from this host (a monitor) instead of on the host itself. @default the host itself */
  readonly from?: H;
  /** Overrides the policy's interval for this check. */
  readonly interval?: Duration;
}

export type Check<H extends string = string> = CheckCommon<H> &
  (
    | {
        readonly kind: 'http';
        readonly url: string;
        /** @default 200 */
        readonly expectStatus?: number;
        /** Extended regular expression the body must match. */
        readonly bodyMatches?: string;
      }
    | {
        readonly kind: 'mail-delivery';
        /** Send to this address over SMTP and wait for it to arrive over IMAP. */
        readonly to: string;
        /** smtp://HOST[:PORT] (STARTTLS required) or smtps://HOST[:PORT]. */
        readonly smtp: string;
        /** imaps://HOST[:PORT] or imap://HOST[:PORT] (STARTTLS required): the password is only sent over TLS. */
        readonly imap: string;
        readonly imapUser: string;
        readonly imapPassword: SecretRef;
        /** @default "5m" */
        readonly maxDelay?: Duration;
      }
    | { readonly kind: 'smtp'; readonly target: string; readonly port?: number }
    | { readonly kind: 'dns'; readonly server: string; readonly name: string; readonly type?: 'A' | 'AAAA' | 'MX' | 'NS' | 'SOA' | 'TXT' }
    | { readonly kind: 'tls-expiry'; readonly target: string; readonly port?: number; /** @default "14d" */ readonly minValidity?: Duration }
    | { readonly kind: 'smart' }
    | { readonly kind: 'cpu-temperature'; /** degrees Celsius @default 85 */ readonly maxCelsius?: number }
    | { readonly kind: 'disk-usage'; /** @default 90 */ readonly maxPercent?: number; /** @default ["/"] */ readonly mounts?: readonly string[] }
    | { readonly kind: 'failed-units' }
    | { readonly kind: 'backup-freshness'; /** @default "26h" */ readonly maxAge?: Duration }
    | { readonly kind: 'security-updates' }
    | { readonly kind: 'reboot-required'; /** Alert only when a reboot has been pending this long. @default "8d" */ readonly maxPending?: Duration }
    | {
        readonly kind: 'monitor-heartbeat';
        /** The monitor host whose liveness this host watches (it must have a monitoring heartbeat). */
        readonly monitor: H;
        /** Alert when the monitor's checks have not all run for this long. @default "5m" */
        readonly maxAge?: Duration;
      }
  );

/**
 * Mail an alert over SMTP, with curl on the host (no mail program needed there). The default
 * server is the host's own mail server; a relay that takes a password is only ever spoken to over
 * TLS (smtps://, or smtp:// with STARTTLS required).
 */
export interface EmailRoute {
  /** Recipients' addresses. */
  readonly to: readonly string[];
  /** Sender address. @default "upkeep@<host name>" */
  readonly from?: string;
  /** "smtp://host[:port]" or "smtps://host[:port]". @default "smtp://localhost" (the host's own mail server) */
  readonly server?: string;
  /** SMTP user; needs `password`. */
  readonly user?: string;
  /** SMTP password; sent only over TLS. */
  readonly password?: SecretRef;
}

/** Where alerts go: exactly one of `webhook`, `alertmanager` and `email`. */
export interface AlertRoute {
  readonly name: string;
  /** POSTed a JSON alert. */
  readonly webhook?: string;
  /**
   * Alertmanager's base URL (e.g. "http://alertmanager:9093"): alerts are POSTed to /api/v2/alerts,
   * re-sent on every check run while firing, and ended (endsAt) on recovery.
   */
  readonly alertmanager?: string;
  /** Mail the alert. */
  readonly email?: EmailRoute;
  /** Bearer token for the webhook or Alertmanager. */
  readonly token?: SecretRef;
  /** Worst-case time from sending to a human seeing it (pager delivery, escalation). @default "2m" */
  readonly delivery?: Duration;
  /**
   * Send a reminder this often while a check keeps failing (webhook and e-mail routes; Alertmanager
   * repeats notifications by its own repeat_interval). @default no reminders
   */
  readonly repeatEvery?: Duration;
}

/**
 * Watch the watcher: while every check that runs on this host (a monitor) keeps running, the host
 * pings a dead-man's switch (healthchecks.io convention: `<url>` on success, `<url>/fail` when
 * its checks have stopped) and publishes the time of its last complete round on TCP `port`, which
 * other hosts' `monitor-heartbeat` checks read.
 */
export interface HeartbeatSpec {
  /** The dead-man's switch URL; a secret, as such URLs embed their key. */
  readonly url: SecretRef;
  /** TCP port the liveness time is served on (systemd socket activation). @default 9469 */
  readonly port?: number;
}

export interface MonitoringPolicy<H extends string = string> {
  /** @default "1m" */
  readonly interval?: Duration;
  /** Consecutive failures before an alert. @default 2 */
  readonly failureThreshold?: number;
  /** Consecutive successes before a recovery notice. @default 2 */
  readonly recoveryThreshold?: number;
  /** Promised response time: an alert reaches a human within this time of a fault. @default "15m" */
  readonly sla?: Duration;
  readonly routes?: readonly AlertRoute[];
  readonly heartbeat?: HeartbeatSpec;
  /** Checks by name; a layer can replace a check by name or remove it with `false`. */
  readonly checks?: { readonly [name: string]: Check<H> | false };
}

/** The three policies every host needs; each layer (fleet, group, host) may set any part. */
export interface MaintenancePolicy<H extends string = string> {
  readonly updates?: UpdatePolicy;
  readonly backups?: BackupPolicy<H>;
  readonly monitoring?: MonitoringPolicy<H>;
}

/** A host may go without a policy only with a written reason. */
export interface Exemptions {
  readonly updates?: string;
  readonly backups?: string;
  readonly monitoring?: string;
}

export interface GroupSpec<G extends string = string, H extends string = string> extends MaintenancePolicy<H> {
  /** Groups that must be rolled out (and soaked) before this one. @default [] */
  readonly after?: readonly NoInfer<G>[];
  /** A staging group receives every change and update first. @default false */
  readonly staging?: boolean;
  /** Time to watch a finished wave before the next group starts. @default "1h" */
  readonly soak?: Duration;
  /** Hosts changed at once within the group. @default 1 */
  readonly batchSize?: number;
  /** Hosts that may fail (and be rolled back) before the rollout stops. @default 0 */
  readonly failureBudget?: number;
}

/** A server to create in Hetzner Cloud. */
export interface ProvisionSpec {
  /** e.g. "cx22". */
  readonly serverType: string;
  /** @default "debian-12" */
  readonly image?: string;
  /** nbg1, fsn1, hel1, ash, hil. @default the fleet's provisioning location */
  readonly location?: string;
  /** Size in GB of an extra volume (the backup server's repositories). */
  readonly volumeSize?: number;
  /** PTR record for the primary IPv4 (mail hosts need one). */
  readonly reverseDns?: string;
}

export interface HostSpec<G extends string = string, H extends string = string> extends MaintenancePolicy<H> {
  readonly group: NoInfer<G>;
  /** @default [] */
  readonly roles?: readonly Role[];
  /** @default "apt" */
  readonly packageFamily?: PackageFamily;
  /** An existing host: address to reach it over ssh. */
  readonly address?: string;
  /** An existing host: its ssh host public key ("ssh-ed25519 AAAA..."), pinned in known_hosts. */
  readonly hostKey?: string;
  /** ssh port. @default 22 */
  readonly port?: number;
  /** A host to provision. Exactly one of `address` and `provision`. */
  readonly provision?: ProvisionSpec;
  /**
   * What the host runs on. Hardware checks (smart, cpu-temperature) run only on bare metal: a
   * virtual machine has no SMART data or CPU sensor to read, so they could only answer UNKNOWN.
   * @default "virtual" for a provisioned host (a Hetzner Cloud server), "bare-metal" for an existing one
   */
  readonly machine?: 'virtual' | 'bare-metal';
  readonly exempt?: Exemptions;
}

export type StateBackend =
  | { readonly local: { /** relative to the project @default "terraform.tfstate" */ readonly path?: string } }
  | { readonly s3: { readonly bucket: string; readonly key: string; readonly region: string; readonly endpoint?: string } }
  | { readonly pg: { readonly connStr: SecretRef; readonly schemaName?: string } };

export interface ProvisioningSpec {
  /** Hetzner Cloud API token. */
  readonly token: SecretRef;
  /** @default "nbg1" */
  readonly location?: string;
  /** Public keys of operators; the applier's key must be among them. */
  readonly operatorKeys: readonly string[];
  /** CIDRs allowed to reach ssh. */
  readonly adminNetworks: readonly string[];
  /** Private network for the fleet, e.g. "10.0.0.0/16". @default none */
  readonly privateNetwork?: string;
  /** @default { local: {} } */
  readonly stateBackend?: StateBackend;
}

/**
 * Hosts that must never reboot at the same time (both nameservers, say). Each member reboots only
 * in its own slot of the window (the window split evenly, in the order listed), and only while
 * every other member answers on `port`; a member whose peer does not answer carries its reboot over.
 */
export interface RebootSet<H extends string = string> {
  /** At least two hosts, all with the same maintenance window; the order is the order of their slots. */
  readonly hosts: readonly H[];
  /** A TCP port every member serves; a peer that does not answer on it counts as down. @default each member's ssh port */
  readonly port?: number;
}

export interface FleetSpec<G extends string = string, H extends string = string> {
  /** Fleet name; used in labels and resource names. */
  readonly name: string;
  /** Policy every group and host starts from. */
  readonly defaults?: MaintenancePolicy<NoInfer<H>>;
  // Names are inferred from the keys of `groups` and `hosts` only; every other mention is a
  // reference that must match one of them.
  readonly groups: { readonly [K in G]: GroupSpec<NoInfer<G>, NoInfer<H>> };
  readonly hosts: { readonly [K in H]: HostSpec<NoInfer<G>, NoInfer<H>> };
  /**
   * Redundant sets by name: their members never reboot together. Hosts with the role "dns" that
   * are in no set named here form the set "dns" (probed on port 53) by themselves.
   */
  readonly rebootSets?: { readonly [name: string]: RebootSet<NoInfer<H>> };
  readonly provisioning?: ProvisioningSpec;
}

/**
 * Declares a fleet. The group and host names become types, so a reference to a group or host
 * that does not exist is a compile error.
 */
export function defineFleet<const G extends string, const H extends string>(fleet: FleetSpec<G, H>): FleetSpec<G, H> {
  return fleet;
}

/** Declares a reusable policy layer (a preset). */
export function definePolicy<const P extends MaintenancePolicy<string>>(policy: P): P {
  return policy;
}
