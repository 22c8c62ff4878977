// The standard maintenance contract (see the design's promises):
//   - routine updates monthly in a weekend-night window; staging's window comes first
//     (first Saturday of the month), production's a week later (second Sunday);
//   - security updates within 24 h, staging first; reboots only in the window, only when required;
//   - daily backups kept 3 months; weekly repository check and restore drill;
//   - monitoring every minute of SMART, CPU temperature, disk space, failed units, pending security
//     updates, a pending reboot and backup freshness on every host, and of HTTP, mail delivery and
//     DNS from the monitor host; alert after 2 failures; SLA response 15 minutes.
//
// Everything here is a plain policy layer: override any part per group or host.

import type { AlertRoute, BackupRepository, Check, MaintenancePolicy, MaintenanceWindow, SecretRef } from '../lib/policy/model.ts';

/** The staging window: first Saturday of the month, 02:00-04:00. */
export function stagingWindow(timeZone = 'UTC'): MaintenanceWindow {
  return { every: 'month', nth: 1, weekday: 'sat', start: '02:00', duration: '2h', timeZone };
}

/** The production window: second Sunday of the month, 02:00-04:00 — always after staging's. */
export function productionWindow(timeZone = 'UTC'): MaintenanceWindow {
  return { every: 'month', nth: 2, weekday: 'sun', start: '02:00', duration: '2h', timeZone };
}

export interface StandardContractOptions<H extends string = string> {
  /** Time zone of the maintenance windows. @default "UTC" */
  readonly timeZone?: string;
  /** Where alerts go; at least one. */
  readonly routes: readonly AlertRoute[];
  /** Where backups go: a backup host of the fleet or a restic URL. */
  readonly backupRepository: BackupRepository<H>;
  readonly backupPassword: SecretRef;
  /**
   * Whether hosts watch their own hardware (smart, cpu-temperature). A fleet of cloud servers has
   * none of its own: upkeep skips these checks on virtual machines anyway, and bin/plan warns.
   * @default true
   */
  readonly hardwareChecks?: boolean;
}

/** Checks every host runs on itself. */
export const hostChecks = {
  smart: { kind: 'smart' },
  'cpu-temperature': { kind: 'cpu-temperature', maxCelsius: 85 },
  'disk-usage': { kind: 'disk-usage', maxPercent: 90 },
  'failed-units': { kind: 'failed-units' },
  'backup-freshness': { kind: 'backup-freshness', maxAge: '26h' },
  'security-updates': { kind: 'security-updates' },
  'reboot-required': { kind: 'reboot-required', maxPending: '8d' },
} as const satisfies Record<string, Check<never>>;

const { smart: _smart, 'cpu-temperature': _temperature, ...withoutHardware } = hostChecks;

/** The standard contract as the fleet's default layer. */
export function standardContract<const H extends string>(options: StandardContractOptions<H>): MaintenancePolicy<H> {
  return {
    updates: {
      window: productionWindow(options.timeZone),
      security: { deadline: '24h', checkEvery: '1h' },
      reboot: 'when-needed',
    },
    backups: {
      schedule: '*-*-* 01:30:00',
      retention: { daily: 90 },
      paths: ['/'],
      repository: options.backupRepository,
      password: options.backupPassword,
      check: { schedule: 'Sun *-*-* 05:00:00', readDataSubset: '5%' },
      drill: { schedule: 'Sat *-*-* 06:00:00' },
    },
    monitoring: {
      interval: '1m',
      failureThreshold: 2,
      recoveryThreshold: 2,
      sla: '15m',
      routes: options.routes,
      checks: options.hardwareChecks === false ? withoutHardware : hostChecks,
    },
  };
}

/** The staging group's layer: its own earlier window and a soak before production. */
export function stagingLayer(timeZone = 'UTC'): MaintenancePolicy<never> & { readonly staging: true; readonly soak: '2h' } {
  return { staging: true, soak: '2h', updates: { window: stagingWindow(timeZone) } };
}

/** Checks a monitor host runs against a web host. */
export function webChecks<const H extends string>(url: string, monitor: H): Record<string, Check<H>> {
  const host = new URL(url).hostname;
  return {
    http: { kind: 'http', url, expectStatus: 200, from: monitor },
    'tls-expiry': { kind: 'tls-expiry', target: host, port: 443, minValidity: '14d', from: monitor },
  };
}

/**
 * Checks a monitor host runs against a mail host: SMTP answers, and a mail really arrives.
 * `smtp` is `smtp://HOST[:PORT]` (STARTTLS required) or `smtps://HOST[:PORT]`; `imap` is
 * `imaps://HOST[:PORT]` or `imap://HOST[:PORT]` (STARTTLS required). The probe mailbox's password is
 * only ever sent over TLS.
 */
export function mailChecks<const H extends string>(options: { readonly smtp: string; readonly imap: string; readonly mailbox: string; readonly password: SecretRef; readonly monitor: H }): Record<string, Check<H>> {
  return {
    smtp: { kind: 'smtp', target: new URL(options.smtp).hostname, port: 25, from: options.monitor },
    'mail-delivery': {
      kind: 'mail-delivery',
      to: options.mailbox,
      smtp: options.smtp,
      imap: options.imap,
      imapUser: options.mailbox,
      imapPassword: options.password,
      maxDelay: '5m',
      from: options.monitor,
    },
  };
}

/** Checks a monitor host runs against a nameserver. */
export function dnsChecks<const H extends string>(server: string, zone: string, monitor: H): Record<string, Check<H>> {
  return {
    'dns-soa': { kind: 'dns', server, name: zone, type: 'SOA', from: monitor },
  };
}
