// Monitoring: one timer per check that runs on this host (its own checks and those it runs for
// other hosts, as a monitor), each calling run-check.sh with the check's configuration. Alerts go
// to the subject host's routes; webhook tokens are secret files.

import { tryParseDuration } from '../policy/duration.ts';
import type { Check } from '../policy/model.ts';
import type { ResolvedCheck, ResolvedFleet, ResolvedHost, ResolvedMonitoring, ResolvedRoute } from '../policy/resolved.ts';
import { CONFIG_DIR, type ManagedFile } from './desired-state.ts';
import { renderEnvFile } from './env-file.ts';
import { configFile, type HostPart } from './host-part.ts';
import { runtimeCommand, seconds, unitFile } from './systemd.ts';

const CHECKS_DIR = `${CONFIG_DIR}/checks`;
const ALERT_DIR = `${CONFIG_DIR}/alert`;
const WORDS = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/** A name usable in unit and file names: lower-case words joined by "-". */
function slug(name: string, what: string): string {
  const s = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  if (!WORDS.test(s)) throw new Error(`${what} ${JSON.stringify(name)} has no letters or digits to name a unit with`);
  return s;
}

function durationOr(text: string | undefined, fallback: string): number {
  const value = tryParseDuration(text ?? fallback);
  if (value === undefined) throw new Error(`not a duration: ${text}`);
  return value;
}

/** The check-specific settings, with the model's defaults, and the packages the check needs. */
interface CheckSettings {
  readonly vars: Record<string, string | number>;
  readonly packages: string[];
  readonly secret?: ManagedFile;
  /** Paths the check writes besides its state (the unit is otherwise read-only towards the system). */
  readonly writes?: string[];
}

function checkSettings(spec: Check<string>, runner: ResolvedHost, secretPath: string): CheckSettings {
  const apt = runner.packageFamily === 'apt';
  switch (spec.kind) {
    case 'http':
      return { vars: { UPKEEP_HTTP_URL: spec.url, UPKEEP_HTTP_STATUS: spec.expectStatus ?? 200, UPKEEP_HTTP_BODY_MATCHES: spec.bodyMatches ?? '' }, packages: ['curl'] };
    case 'mail-delivery':
      return {
        vars: {
          UPKEEP_MAIL_TO: spec.to,
          UPKEEP_MAIL_SMTP: spec.smtp,
          UPKEEP_MAIL_IMAP: spec.imap,
          UPKEEP_MAIL_IMAP_USER: spec.imapUser,
          UPKEEP_MAIL_IMAP_PASSWORD_FILE: secretPath,
          UPKEEP_MAIL_MAX_DELAY: durationOr(spec.maxDelay, '5m'),
        },
        packages: ['curl'],
        secret: { path: secretPath, mode: '0600', owner: 'root:root', secret: spec.imapPassword },
      };
    case 'smtp':
      return { vars: { UPKEEP_SMTP_TARGET: spec.target, UPKEEP_SMTP_PORT: spec.port ?? 25 }, packages: ['curl'] };
    case 'dns':
      return { vars: { UPKEEP_DNS_SERVER: spec.server, UPKEEP_DNS_NAME: spec.name, UPKEEP_DNS_TYPE: spec.type ?? 'A' }, packages: [apt ? 'bind9-dnsutils' : 'bind-utils'] };
    case 'tls-expiry':
      return { vars: { UPKEEP_TLS_TARGET: spec.target, UPKEEP_TLS_PORT: spec.port ?? 443, UPKEEP_TLS_MIN_VALIDITY: durationOr(spec.minValidity, '14d') }, packages: ['openssl'] };
    case 'smart':
      return { vars: {}, packages: ['smartmontools'] };
    case 'cpu-temperature':
      return { vars: { UPKEEP_CPU_MAX_CELSIUS: spec.maxCelsius ?? 85 }, packages: [] };
    case 'disk-usage': {
      const mounts = spec.mounts ?? ['/'];
      for (const m of mounts) if (!/^\/\S*$/.test(m)) throw new Error(`disk-usage mount ${JSON.stringify(m)} must be an absolute path without spaces`);
      return { vars: { UPKEEP_DISK_MAX_PERCENT: spec.maxPercent ?? 90, UPKEEP_DISK_MOUNTS: mounts.join(' ') }, packages: [] };
    }
    case 'failed-units':
      return { vars: {}, packages: [] };
    case 'backup-freshness':
      return { vars: { UPKEEP_BACKUP_MAX_AGE: durationOr(spec.maxAge, '26h') }, packages: [] };
    case 'security-updates':
      // Simulating an upgrade still refreshes the package manager's caches (and dnf's log).
      return {
        vars: { UPKEEP_PACKAGE_FAMILY: runner.packageFamily },
        packages: [],
        writes: apt ? ['-/var/cache/apt'] : ['-/var/cache/dnf', '-/var/lib/dnf', '-/var/log'],
      };
    case 'reboot-required':
      return { vars: { UPKEEP_PACKAGE_FAMILY: runner.packageFamily, UPKEEP_REBOOT_MAX_PENDING: durationOr(spec.maxPending, '8d') }, packages: apt ? [] : ['dnf-utils'] };
  }
}

/** Route files, keyed by file name; two subjects' routes of the same name must agree. */
function routeFiles(routes: readonly ResolvedRoute[], into: Map<string, { route: ResolvedRoute; files: ManagedFile[] }>): string[] {
  return routes.map((route) => {
    const key = slug(route.name, 'route name');
    const known = into.get(key);
    if (known) {
      if (known.route.webhook !== route.webhook || JSON.stringify(known.route.token) !== JSON.stringify(route.token)) {
        throw new Error(`two alert routes named ${JSON.stringify(route.name)} differ; give them different names`);
      }
      return key;
    }
    const tokenPath = `${ALERT_DIR}/${key}.token`;
    const env = renderEnvFile(`Alert route ${route.name}, for alert.sh.`, { UPKEEP_WEBHOOK: route.webhook, ...(route.token ? { UPKEEP_TOKEN_FILE: tokenPath } : {}) });
    into.set(key, {
      route,
      files: [configFile(`${ALERT_DIR}/${key}.env`, env), ...(route.token ? [{ path: tokenPath, mode: '0600', owner: 'root:root', secret: route.token }] : [])],
    });
    return key;
  });
}

/** The unit name of a check: "upkeep-check-<subject>-<name>". */
export function checkUnitName(check: Pick<ResolvedCheck, 'subject' | 'name'>): string {
  return `upkeep-check-${slug(check.subject, 'host name')}-${slug(check.name, 'check name')}`;
}

/** Checks that run on `host`, with the monitoring policy of the host each is about. */
type PlacedCheck = { check: ResolvedCheck; policy: ResolvedMonitoring };

/**
 * Every check of the fleet by the host it runs on, built once per fleet: looking through the whole
 * fleet for each host made compiling quadratic in the number of hosts.
 */
const checksByHost = new WeakMap<ResolvedFleet, ReadonlyMap<string, readonly PlacedCheck[]>>();

function checksRunOn(fleet: ResolvedFleet, host: ResolvedHost): readonly PlacedCheck[] {
  let index = checksByHost.get(fleet);
  if (index === undefined) {
    const byHost = new Map<string, PlacedCheck[]>();
    for (const subject of fleet.hosts) {
      for (const check of subject.monitoring?.checks ?? []) {
        const placed = byHost.get(check.runsOn) ?? [];
        placed.push({ check, policy: subject.monitoring! });
        byHost.set(check.runsOn, placed);
      }
    }
    for (const placed of byHost.values()) placed.sort((a, b) => checkUnitName(a.check).localeCompare(checkUnitName(b.check)));
    index = byHost;
    checksByHost.set(fleet, index);
  }
  return index.get(host.name) ?? [];
}

/** Monitoring timers for every check that runs on `host`; undefined when none does. */
export function compileMonitoring(fleet: ResolvedFleet, host: ResolvedHost): HostPart | undefined {
  const checks = checksRunOn(fleet, host);
  if (checks.length === 0) return undefined;
  const routes = new Map<string, { route: ResolvedRoute; files: ManagedFile[] }>();
  const files: ManagedFile[] = [];
  const units: string[] = [];
  const packages = new Set(['curl']);
  const scripts = new Set(['run-check.sh']);
  const seen = new Set<string>();
  for (const { check, policy } of checks) {
    const unit = checkUnitName(check);
    if (seen.has(unit)) throw new Error(`checks ${check.subject}/${check.name} and another check share the unit ${unit}`);
    seen.add(unit);
    const id = unit.slice('upkeep-check-'.length);
    const envPath = `${CHECKS_DIR}/${id}.env`;
    const settings = checkSettings(check.spec, host, `${CHECKS_DIR}/${id}.secret`);
    const routeKeys = routeFiles(policy.routes, routes);
    files.push(
      configFile(envPath, renderEnvFile(`Check ${check.name} of ${check.subject}, for run-check.sh.`, {
        UPKEEP_CHECK_ID: id,
        UPKEEP_CHECK_KIND: check.spec.kind,
        UPKEEP_CHECK_SUBJECT: check.subject,
        UPKEEP_CHECK_NAME: check.name,
        UPKEEP_FAILURE_THRESHOLD: policy.failureThreshold,
        UPKEEP_RECOVERY_THRESHOLD: policy.recoveryThreshold,
        UPKEEP_ROUTES: [...new Set(routeKeys)].join(' '),
        ...settings.vars,
      })),
      ...(settings.secret ? [settings.secret] : []),
      unitFile(`${unit}.service`, {
        Unit: { Description: `upkeep: check ${check.name} of ${check.subject} (${check.spec.kind})`, After: 'network-online.target' },
        Service: {
          Type: 'oneshot',
          ExecStart: runtimeCommand('run-check.sh', envPath),
          // A hung probe must not hold back the next one for long.
          TimeoutStartSec: seconds(Math.max(check.intervalSeconds, 120) + (check.spec.kind === 'mail-delivery' ? settings.vars.UPKEEP_MAIL_MAX_DELAY as number : 0)),
          ProtectSystem: 'strict',
          ProtectHome: 'read-only',
          PrivateTmp: true,
          NoNewPrivileges: true,
          StateDirectory: 'upkeep/checks',
          ReadWritePaths: settings.writes?.join(' '),
        },
      }),
      unitFile(`${unit}.timer`, {
        Unit: { Description: `upkeep: check ${check.name} of ${check.subject} every ${seconds(check.intervalSeconds)}` },
        // Monotonic and exact: the SLA arithmetic counts on one run per interval, without delay.
        Timer: { OnActiveSec: '1min', OnUnitActiveSec: seconds(check.intervalSeconds), AccuracySec: '1s' },
        Install: { WantedBy: 'timers.target' },
      }),
    );
    units.push(`${unit}.timer`);
    settings.packages.forEach((p) => packages.add(p));
    scripts.add(`check-${check.spec.kind}.sh`);
  }
  for (const { files: routeFileList } of routes.values()) files.push(...routeFileList);
  return { files, units, packages: [...packages], scripts: [...scripts] };
}
