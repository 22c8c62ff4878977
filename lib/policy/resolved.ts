// The resolved fleet: every default applied, every layer merged, every duration in seconds and
// every window turned into exact systemd calendar expressions. Compilers read only this.

import type { Check, CheckKind, EmailRoute, PackageFamily, ProvisionSpec, ProvisioningSpec, Role, SecretRef, Weekday } from './model.ts';

export interface ResolvedWindow {
  readonly every: 'week' | 'month';
  /** Weekdays the window may open on. */
  readonly days: readonly Weekday[];
  /** For monthly windows: which occurrence of the weekday. */
  readonly nth?: 1 | 2 | 3 | 4 | 'last';
  /** Minutes after local midnight. */
  readonly startMinute: number;
  readonly durationSeconds: number;
  readonly timeZone: string;
  readonly blackouts: readonly string[];
  /** OnCalendar expressions (one per line in a unit) for the window's opening, in `timeZone`. */
  readonly onCalendar: readonly string[];
}

export interface ResolvedMitigation {
  readonly id: string;
  readonly package: string;
  readonly fixedIn?: string;
  readonly action:
    | { readonly kind: 'mask-unit'; readonly unit: string }
    | { readonly kind: 'stop-unit'; readonly unit: string }
    | { readonly kind: 'firewall-port'; readonly port: number; readonly protocol: 'tcp' | 'udp' }
    | { readonly kind: 'drop-in'; readonly path: string; readonly content: string };
}

export interface ResolvedUpdates {
  readonly window: ResolvedWindow;
  readonly securityDeadlineSeconds: number;
  readonly securityCheckSeconds: number;
  readonly reboot: 'never' | 'when-needed' | 'always';
  readonly channel: 'stable' | 'rolling';
  readonly hold: readonly string[];
  readonly mitigations: readonly ResolvedMitigation[];
  /** The host's place in its reboot set (lib/policy/reboot-sets.ts), when it is in one. */
  readonly rebootSet?: ResolvedRebootSetMember;
}

export interface ResolvedRebootSetMember {
  readonly set: string;
  /** This member's own name, as its peers know it. */
  readonly host: string;
  /** 0-based position in the set: which slot of the window is the host's. */
  readonly index: number;
  readonly count: number;
  /**
   * The other members, each with the address and TCP port at which it must answer before this host
   * reboots, and its ssh host key when the policy pins one, which signs its readiness. A
   * provisioned peer has neither in the policy (`provisioned`): bin/apply pins its address and
   * rotated host key on this host (lib/apply/reboot-set-pins.ts).
   */
  readonly peers: readonly RebootSetPeer[];
}

export type RebootSetPeer =
  | { readonly host: string; readonly address: string; readonly port: number; readonly hostKey?: string; readonly provisioned?: undefined }
  | { readonly host: string; readonly port: number; readonly provisioned: true };

export interface ResolvedBackups {
  readonly schedule: string;
  readonly retention: { readonly daily: number; readonly weekly: number; readonly monthly: number; readonly yearly: number };
  readonly paths: readonly string[];
  readonly exclude: readonly string[];
  /**
   * The restic repository as restic takes it: "rclone:restic-web1@backup1:/srv/restic/web1" for a
   * repository on a fleet host (served append-only over ssh), else the policy's URL.
   */
  readonly repository: string;
  /** The fleet host holding the repository, when it is one of ours (with the two fields below). */
  readonly repositoryHost?: string;
  /** An sftp URL repository's pinned ssh host key (policy `repository.hostKey`). */
  readonly repositoryHostKey?: string;
  /** The user that owns the repository on repositoryHost: "restic-<client>". */
  readonly repositoryUser?: string;
  /** The repository's directory on repositoryHost, inside the backup root. */
  readonly repositoryPath?: string;
  /** The secret the repository password comes from (see sharedPassword). */
  readonly password: SecretRef;
  /** Whether `password` is the repository password itself rather than the secret it is derived from. */
  readonly sharedPassword: boolean;
  readonly checkSchedule: string;
  readonly checkReadDataSubset: string;
  readonly drillSchedule: string;
}

export interface ResolvedCheck {
  readonly name: string;
  /** The host this check is about. */
  readonly subject: string;
  /** The host the check runs on (the subject itself, or a monitor host). */
  readonly runsOn: string;
  readonly intervalSeconds: number;
  readonly spec: Check<string>;
}

export interface ResolvedRoute {
  readonly name: string;
  /** Exactly one of webhook, alertmanager and email (validation reports a route with none or more). */
  readonly webhook?: string;
  readonly alertmanager?: string;
  readonly email?: EmailRoute;
  readonly token?: SecretRef;
  readonly deliverySeconds: number;
  /** Reminder interval while a check keeps failing; undefined: no reminders. */
  readonly repeatSeconds?: number;
}

export interface ResolvedMonitoring {
  readonly intervalSeconds: number;
  readonly failureThreshold: number;
  readonly recoveryThreshold: number;
  readonly slaSeconds: number;
  readonly routes: readonly ResolvedRoute[];
  /** The dead-man's switch pinged while the checks running on this host keep running. */
  readonly heartbeat?: { readonly url: SecretRef; readonly port: number };
  /** Checks about this host, sorted by name. Some may run on another host. */
  readonly checks: readonly ResolvedCheck[];
  /**
   * Checks the policy layers name that do not apply to this host, with why: hardware checks on a
   * virtual machine, backup-freshness on a host exempt from backups, update checks on a host
   * exempt from updates. Not compiled; bin/plan warns about the hardware ones.
   */
  readonly skipped: readonly { readonly name: string; readonly kind: CheckKind; readonly why: string }[];
}

export interface ResolvedHost {
  readonly name: string;
  readonly group: string;
  readonly roles: readonly Role[];
  readonly packageFamily: PackageFamily;
  readonly machine: 'virtual' | 'bare-metal';
  readonly address?: string;
  readonly hostKey?: string;
  readonly port: number;
  readonly provision?: ProvisionSpec & { readonly image: string; readonly location: string };
  readonly updates?: ResolvedUpdates;
  readonly backups?: ResolvedBackups;
  readonly monitoring?: ResolvedMonitoring;
  readonly exempt: { readonly updates?: string; readonly backups?: string; readonly monitoring?: string };
}

export interface ResolvedGroup {
  readonly name: string;
  readonly after: readonly string[];
  readonly staging: boolean;
  readonly soakSeconds: number;
  readonly batchSize: number;
  readonly failureBudget: number;
  /** Host names in this group, sorted. */
  readonly hosts: readonly string[];
}

export interface ResolvedFleet {
  readonly name: string;
  /** Groups in rollout order: every group after the groups it names in `after`, ties by name. */
  readonly groups: readonly ResolvedGroup[];
  /** Hosts sorted by name. */
  readonly hosts: readonly ResolvedHost[];
  readonly provisioning?: ProvisioningSpec;
}
