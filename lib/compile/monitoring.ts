// Monitoring: one timer per check that runs on this host (its own checks and those it runs for
// other hosts, as a monitor), each calling run-check.sh with the check's configuration. Alerts go
// to the subject host's routes (webhook, Alertmanager, e-mail); tokens and SMTP passwords are
// secret files.

import { longestRunSeconds, runPeriodSeconds } from '../policy/check-timing.ts';
import { tryParseDuration } from '../policy/duration.ts';
import type { Check, SecretRef } from '../policy/model.ts';
import type { ResolvedCheck, ResolvedFleet, ResolvedHost, ResolvedMonitoring, ResolvedRoute } from '../policy/resolved.ts';
import { canonicalJson } from './canonical-json.ts';
import { CONFIG_DIR, LIVENESS_DIR, STATE_DIR, type ManagedFile } from './desired-state.ts';
import { renderEnvFile } from './env-file.ts';
import { configFile, type HostPart } from './host-part.ts';
import { runtimeCommand, seconds, socketServedFiles, unitFile } from './systemd.ts';

const CHECKS_DIR = `${CONFIG_DIR}/checks`;
/** node_exporter's textfile collector directory on Debian (prometheus-node-exporter). */
const TEXTFILE_DIR = '/var/lib/prometheus/node-exporter';
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

function checkSettings(spec: Check<string>, runner: ResolvedHost, secretPath: string, fleet: ResolvedFleet): CheckSettings {
  const apt = runner.packageFamily === 'apt';
  switch (spec.kind) {
    case 'http':
      return { vars: { UPKEEP_HTTP_URL: spec.url, UPKEEP_HTTP_STATUS: spec.expectStatus ?? 200, UPKEEP_HTTP_BODY_MATCHES: spec.bodyMatches ?? '' }, packages: ['curl'] };
    case 'mail-delivery':
      return {
        vars: {
          UPKEEP_MAIL_TO: spec.to,
          UPKEEP_MAIL_SMTP: spec.smtp,
          // The schema allows "imaps://host/"; the script appends "/INBOX", and curl would SELECT
          // "/INBOX", a mailbox that does not exist.
          UPKEEP_MAIL_IMAP: spec.imap.replace(/\/$/, ''),
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
      // apt: reads what updates.sh recorded; dnf: simulating an upgrade still refreshes the
      // package manager's caches (and dnf's log).
      return {
        vars: { UPKEEP_PACKAGE_FAMILY: runner.packageFamily, UPKEEP_SECURITY_DEADLINE: runner.updates?.securityDeadlineSeconds ?? 86_400 },
        packages: [],
        writes: apt ? ['-/var/cache/apt'] : ['-/var/cache/dnf', '-/var/lib/dnf', '-/var/log'],
      };
    case 'reboot-required':
      return { vars: { UPKEEP_PACKAGE_FAMILY: runner.packageFamily, UPKEEP_REBOOT_MAX_PENDING: durationOr(spec.maxPending, '8d') }, packages: apt ? [] : ['dnf-utils'] };
    case 'monitor-heartbeat': {
      const monitor = fleet.hosts.find((h) => h.name === spec.monitor);
      const port = monitor?.monitoring?.heartbeat?.port;
      if (!monitor || port === undefined) throw new Error(`monitor-heartbeat check: host ${JSON.stringify(spec.monitor)} has no monitoring heartbeat`);
      // A provisioned monitor has no address in the policy: the check reads the one bin/apply
      // pinned on this host (lib/compile/peer-pins.ts), or its own name when it watches itself.
      const at: Record<string, string | number> = monitor.provision && monitor.name !== runner.name ? { UPKEEP_HEARTBEAT_PORT: port } : { UPKEEP_HEARTBEAT_URL: `http://${monitor.address ?? monitor.name}:${port}/` };
      return { vars: { UPKEEP_HEARTBEAT_MONITOR: monitor.name, ...at, UPKEEP_HEARTBEAT_MAX_AGE: durationOr(spec.maxAge, '5m') }, packages: [] };
    }
  }
}

/** What a route's files say, without its delivery time (which only the SLA arithmetic reads). */
function routeIdentity(route: ResolvedRoute): string {
  const { deliverySeconds: _, ...rest } = route;
  return canonicalJson(rest);
}

/** The settings alert.sh reads for one route, and its secret files. */
function routeSettings(route: ResolvedRoute, key: string, runner: ResolvedHost): { vars: Record<string, string | number>; secrets: ManagedFile[] } {
  const secret = (suffix: string, ref: SecretRef): ManagedFile => ({ path: `${ALERT_DIR}/${key}.${suffix}`, mode: '0600', owner: 'root:root', secret: ref });
  const repeat: Record<string, number> = route.repeatSeconds !== undefined ? { UPKEEP_ROUTE_REPEAT_SECONDS: route.repeatSeconds } : {};
  const token = route.token ? secret('token', route.token) : undefined;
  const tokenVars: Record<string, string> = token ? { UPKEEP_TOKEN_FILE: token.path } : {};
  if (route.alertmanager !== undefined) {
    return { vars: { UPKEEP_ROUTE_KIND: 'alertmanager', UPKEEP_ALERTMANAGER_URL: `${route.alertmanager.replace(/\/+$/, '')}/api/v2/alerts`, ...tokenVars }, secrets: token ? [token] : [] };
  }
  if (route.email !== undefined) {
    const e = route.email;
    const password = e.password ? secret('smtp-password', e.password) : undefined;
    return {
      vars: {
        UPKEEP_ROUTE_KIND: 'email',
        UPKEEP_ROUTE_SMTP_SERVER: e.server ?? 'smtp://localhost',
        UPKEEP_ROUTE_MAIL_FROM: e.from ?? `upkeep@${runner.name}`,
        UPKEEP_ROUTE_MAIL_TO: e.to.join(' '),
        ...(e.user !== undefined && password && { UPKEEP_ROUTE_SMTP_USER: e.user, UPKEEP_ROUTE_SMTP_PASSWORD_FILE: password.path }),
        ...repeat,
      },
      secrets: password ? [password] : [],
    };
  }
  if (route.webhook === undefined) throw new Error(`alert route ${JSON.stringify(route.name)} has no webhook, alertmanager or email`);
  return { vars: { UPKEEP_ROUTE_KIND: 'webhook', UPKEEP_WEBHOOK: route.webhook, ...tokenVars, ...repeat }, secrets: token ? [token] : [] };
}

/** Route files, keyed by file name; two subjects' routes of the same name must agree. */
function routeFiles(routes: readonly ResolvedRoute[], runner: ResolvedHost, into: Map<string, { route: ResolvedRoute; files: ManagedFile[] }>): string[] {
  return routes.map((route) => {
    const key = slug(route.name, 'route name');
    const known = into.get(key);
    if (known) {
      if (routeIdentity(known.route) !== routeIdentity(route)) {
        throw new Error(`two alert routes named ${JSON.stringify(route.name)} differ; give them different names`);
      }
      return key;
    }
    const { vars, secrets } = routeSettings(route, key, runner);
    into.set(key, { route, files: [configFile(`${ALERT_DIR}/${key}.env`, renderEnvFile(`Alert route ${route.name}, for alert.sh.`, vars)), ...secrets] });
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

/** The monitors whose heartbeat a check running on `host` reads. */
export function heartbeatMonitorsOf(fleet: ResolvedFleet, host: ResolvedHost): ResolvedHost[] {
  const names = new Set(checksRunOn(fleet, host).flatMap(({ check }) => (check.spec.kind === 'monitor-heartbeat' ? [check.spec.monitor] : [])));
  return fleet.hosts.filter((h) => names.has(h.name));
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
    const settings = checkSettings(check.spec, host, `${CHECKS_DIR}/${id}.secret`, fleet);
    const routeKeys = routeFiles(policy.routes, host, routes);
    files.push(
      configFile(envPath, renderEnvFile(`Check ${check.name} of ${check.subject}, for run-check.sh.`, {
        UPKEEP_CHECK_ID: id,
        UPKEEP_CHECK_KIND: check.spec.kind,
        UPKEEP_CHECK_SUBJECT: check.subject,
        UPKEEP_CHECK_NAME: check.name,
        UPKEEP_CHECK_INTERVAL: check.intervalSeconds,
        // At most this long between two runs' alerts (an interval, and a run that takes long):
        // how long an alert sent to Alertmanager must stay active until the next one.
        UPKEEP_CHECK_RESEND_SECONDS: runPeriodSeconds(check.spec, check.intervalSeconds),
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
          // run-check.sh exits with the check's severity (1 WARNING, 2 CRITICAL, 3 UNKNOWN) for the
          // health gate to read; only its own failure (4) makes the unit fail.
          SuccessExitStatus: '1 2 3',
          // A hung probe must not hold back the next one for long.
          TimeoutStartSec: seconds(Math.max(check.intervalSeconds, 120) + (check.spec.kind === 'mail-delivery' ? settings.vars.UPKEEP_MAIL_MAX_DELAY as number : 0)),
          ProtectSystem: 'strict',
          ProtectHome: 'read-only',
          PrivateTmp: true,
          NoNewPrivileges: true,
          StateDirectory: 'upkeep/checks',
          // node_exporter's textfile collector directory, where it exists (write-metrics.sh).
          ReadWritePaths: [...(settings.writes ?? []), `-${TEXTFILE_DIR}`].join(' '),
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
  const heartbeat = host.monitoring?.heartbeat;
  if (heartbeat) {
    files.push(...heartbeatFiles(heartbeat, checks.map(({ check }) => check)));
    units.push('upkeep-heartbeat.timer', 'upkeep-liveness.socket');
    scripts.add('heartbeat.sh').add('serve-liveness.sh');
  }
  return { files, units, packages: [...packages], scripts: [...scripts] };
}

/**
 * The monitor's heartbeat: a timer that pings the dead-man's switch while every check running
 * here has run within two of its intervals and its longest run (a mail-delivery check waits its
 * maxDelay in every failing run), plus a minute, and records that time; a socket serving the
 * recorded time to the other hosts' monitor-heartbeat checks.
 */
function heartbeatFiles(heartbeat: NonNullable<ResolvedMonitoring['heartbeat']>, checks: readonly ResolvedCheck[]): ManagedFile[] {
  const urlPath = `${CONFIG_DIR}/heartbeat.url`;
  const envPath = `${CONFIG_DIR}/heartbeat.env`;
  const every = Math.min(...checks.map((c) => c.intervalSeconds));
  const watched = checks.map((c) => `${checkUnitName(c).slice('upkeep-check-'.length)}:${2 * c.intervalSeconds + longestRunSeconds(c.spec) + 60}`);
  return [
    { path: urlPath, mode: '0600', owner: 'root:root', secret: heartbeat.url },
    configFile(envPath, renderEnvFile('The monitor heartbeat, for heartbeat.sh.', { UPKEEP_HEARTBEAT_URL_FILE: urlPath, UPKEEP_HEARTBEAT_CHECKS: watched.join(' ') })),
    unitFile('upkeep-heartbeat.service', {
      Unit: { Description: 'upkeep: heartbeat of this monitor to its dead-man\'s switch', After: 'network-online.target' },
      Service: {
        Type: 'oneshot',
        ExecStart: runtimeCommand('heartbeat.sh', envPath),
        TimeoutStartSec: '120s',
        ProtectSystem: 'strict',
        ProtectHome: 'read-only',
        PrivateTmp: true,
        NoNewPrivileges: true,
        // Where it records the time for serve-liveness.sh (heartbeat.sh sets the same modes).
        StateDirectory: LIVENESS_DIR.slice('/var/lib/'.length),
        StateDirectoryMode: '0755',
      },
    }),
    unitFile('upkeep-heartbeat.timer', {
      Unit: { Description: `upkeep: heartbeat every ${seconds(every)}` },
      Timer: { OnActiveSec: '1min', OnUnitActiveSec: seconds(every), AccuracySec: '1s' },
      Install: { WantedBy: 'timers.target' },
    }),
    ...socketServedFiles(
      'upkeep-liveness',
      { stream: String(heartbeat.port) },
      { socket: "upkeep: when this monitor's checks last all ran, for the other hosts", service: "upkeep: serve the time this monitor's checks last all ran" },
      'serve-liveness.sh',
      {},
      // It reads only the time in LIVENESS_DIR; the host's state is none of its business.
      [STATE_DIR],
    ),
  ];
}
