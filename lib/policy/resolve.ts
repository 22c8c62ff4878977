// resolve: defaults and layering (fleet -> group -> host) turned into exact values. Pure. Every
// problem found on the way is collected as an issue at the policy path where the value was
// written (the host, its group or the fleet defaults), so YAML errors point at the right line.

import { calendarProblem } from './calendar.ts';
import { tryParseDuration } from './duration.ts';
import type { PolicyIssue, PolicyPath } from './errors.ts';
import { layerPolicies, policyOf } from './layering.ts';
import type { BackupPolicy, CheckKind, FleetSpec, HostSpec, MaintenancePolicy, MaintenanceWindow, Mitigation, MonitoringPolicy, UpdatePolicy } from './model.ts';
import type {
  ResolvedBackups,
  ResolvedCheck,
  ResolvedFleet,
  ResolvedGroup,
  ResolvedHost,
  ResolvedMitigation,
  ResolvedMonitoring,
  ResolvedUpdates,
} from './resolved.ts';
import { resolveRebootSets } from './reboot-sets.ts';
import { rolloutOrder } from './rollout-order.ts';
import { resolveWindow } from './window.ts';

export const DEFAULTS = {
  port: 22,
  packageFamily: 'apt',
  image: 'debian-12',
  location: 'nbg1',
  securityDeadline: '24h',
  securityCheckEvery: '1h',
  reboot: 'when-needed',
  channel: 'stable',
  backupSchedule: '*-*-* 01:30:00',
  retentionDaily: 90,
  backupPaths: ['/'],
  repositoryRoot: '/srv/restic',
  repositoryUser: 'restic',
  checkSchedule: 'Sun *-*-* 05:00:00',
  checkReadDataSubset: '5%',
  drillSchedule: 'Sat *-*-* 06:00:00',
  monitoringInterval: '1m',
  failureThreshold: 2,
  recoveryThreshold: 2,
  sla: '15m',
  routeDelivery: '2m',
  heartbeatPort: 9469,
  soak: '1h',
  batchSize: 1,
  failureBudget: 0,
} as const;

export interface ResolveResult {
  readonly fleet: ResolvedFleet;
  readonly issues: readonly PolicyIssue[];
}

type Layers = { readonly host: string; readonly group: string | undefined };

/** Where a field of a host's effective policy was written: the host, else its group, else the defaults. */
/**
 * Why a repository path on a backup host cannot be used, or undefined: it must be a plain absolute
 * path strictly inside the backup root. The backup host creates it for the client's own user, so a
 * path elsewhere (/etc/ssh, the root itself) would hand that directory to the client.
 */
function repositoryPathProblem(path: string, root: string): string | undefined {
  if (!/^\/[A-Za-z0-9._\/-]+$/.test(path)) return `repository path ${JSON.stringify(path)} must be an absolute path of letters, digits and . _ - /`;
  if (path.split('/').slice(1).some((part) => part === '' || part === '.' || part === '..')) {
    return `repository path ${JSON.stringify(path)} must be written plainly: no empty, "." or ".." components, no trailing "/"`;
  }
  if (path === root) return `repository path ${path} is the backup root itself, which holds every client's repository: give the client a directory below it`;
  if (!path.startsWith(`${root}/`)) return `repository path ${JSON.stringify(path)} is outside the backup root ${root}: repositories live in their own directory below it`;
  return undefined;
}

function origin(spec: FleetSpec, layers: Layers, field: PolicyPath): PolicyPath {
  const candidates: [PolicyPath, unknown][] = [
    [['hosts', layers.host], spec.hosts[layers.host]],
    ...(layers.group ? [[['groups', layers.group], spec.groups[layers.group]] as [PolicyPath, unknown]] : []),
    [['defaults'], spec.defaults],
  ];
  for (const [prefix, root] of candidates) {
    let node: unknown = root;
    for (const key of field) node = node && typeof node === 'object' ? (node as Record<string | number, unknown>)[key] : undefined;
    if (node !== undefined) return [...prefix, ...field];
  }
  return ['hosts', layers.host, ...field];
}

class Resolver {
  readonly issues: PolicyIssue[] = [];
  constructor(readonly spec: FleetSpec) {}

  /** Records an issue once: a value written in the defaults would otherwise be reported per host. */
  issue(path: PolicyPath, message: string): void {
    const key = JSON.stringify([path, message]);
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    this.issues.push({ path, message });
  }
  readonly #seen = new Set<string>();

  /** Windows are mostly inherited: resolve each one written once (it checks years of openings). */
  window(spec: MaintenanceWindow, path: PolicyPath): ReturnType<typeof resolveWindow> {
    const key = JSON.stringify([spec, path]);
    let resolved = this.#windows.get(key);
    if (!resolved) this.#windows.set(key, (resolved = resolveWindow(spec, path)));
    return resolved;
  }
  readonly #windows = new Map<string, ReturnType<typeof resolveWindow>>();

  duration(layers: Layers, field: PolicyPath, value: string | undefined, fallback: string): number {
    const text = value ?? fallback;
    const seconds = tryParseDuration(text);
    if (seconds === undefined) {
      this.issue(origin(this.spec, layers, field), `expected a duration such as 15m, 24h or 7d, got ${JSON.stringify(text)}`);
      return tryParseDuration(fallback)!;
    }
    return seconds;
  }

  updates(layers: Layers, policy: UpdatePolicy): ResolvedUpdates | undefined {
    if (!policy.window) {
      this.issue(origin(this.spec, layers, ['updates']), 'updates need a maintenance window (updates.window) for routine updates and reboots');
      return undefined;
    }
    const { window, issues } = this.window(policy.window, origin(this.spec, layers, ['updates', 'window']));
    for (const i of issues) this.issue(i.path, i.message);
    if (!window) return undefined;
    return {
      window,
      securityDeadlineSeconds: this.duration(layers, ['updates', 'security', 'deadline'], policy.security?.deadline, DEFAULTS.securityDeadline),
      securityCheckSeconds: this.duration(layers, ['updates', 'security', 'checkEvery'], policy.security?.checkEvery, DEFAULTS.securityCheckEvery),
      reboot: policy.reboot ?? DEFAULTS.reboot,
      channel: policy.channel ?? DEFAULTS.channel,
      hold: [...(policy.hold ?? [])].sort(),
      mitigations: (policy.mitigations ?? []).map(resolveMitigation),
    };
  }

  backups(layers: Layers, policy: BackupPolicy): ResolvedBackups | undefined {
    const at = (field: PolicyPath) => origin(this.spec, layers, ['backups', ...field]);
    if (!policy.repository) this.issue(at([]), 'backups need a repository (backups.repository: a backup host or a restic URL)');
    if (!policy.password) this.issue(at([]), 'backups need a repository password reference (backups.password: {env} or {file})');
    if (!policy.repository || !policy.password) return undefined;

    let repository: string;
    let repositoryHost: string | undefined;
    let repositoryUser: string | undefined;
    let repositoryPath: string | undefined;
    let repositoryHostKey: string | undefined;
    if ('host' in policy.repository) {
      repositoryHost = policy.repository.host;
      // Own keys only: a name such as "constructor" is on every object's prototype.
      if (!Object.hasOwn(this.spec.hosts, repositoryHost)) {
        this.issue(at(['repository', 'host']), `backup host "${repositoryHost}" is not a host of this fleet`);
        return undefined;
      }
      const path = policy.repository.path ?? `${DEFAULTS.repositoryRoot}/${layers.host}`;
      const problem = repositoryPathProblem(path, DEFAULTS.repositoryRoot);
      if (problem) {
        this.issue(at(['repository', 'path']), problem);
        return undefined;
      }
      // One receiving user per client, so that no client can read or delete another's backups; the
      // backup host serves each user's repository append-only (lib/compile/backups.ts).
      repositoryUser = `${DEFAULTS.repositoryUser}-${layers.host}`;
      repositoryPath = path;
      repository = `rclone:${repositoryUser}@${repositoryHost}:${path}`;
    } else {
      repository = policy.repository.url;
      repositoryHostKey = policy.repository.hostKey;
    }
    const r = policy.retention ?? {};
    for (const [field, expr] of [[['schedule'], policy.schedule], [['check', 'schedule'], policy.check?.schedule], [['drill', 'schedule'], policy.drill?.schedule]] as const) {
      const problem = expr === undefined ? undefined : calendarProblem(expr);
      if (problem) this.issue(at([...field]), `bad calendar expression: ${problem}`);
    }
    return {
      schedule: policy.schedule ?? DEFAULTS.backupSchedule,
      retention: { daily: r.daily ?? DEFAULTS.retentionDaily, weekly: r.weekly ?? 0, monthly: r.monthly ?? 0, yearly: r.yearly ?? 0 },
      paths: [...(policy.paths ?? DEFAULTS.backupPaths)],
      exclude: [...(policy.exclude ?? [])],
      repository,
      ...(repositoryHost !== undefined && repositoryUser !== undefined && repositoryPath !== undefined && { repositoryHost, repositoryUser, repositoryPath }),
      password: policy.password,
      sharedPassword: policy.sharedPassword ?? false,
      ...(repositoryHostKey !== undefined && { repositoryHostKey }),
      checkSchedule: policy.check?.schedule ?? DEFAULTS.checkSchedule,
      checkReadDataSubset: policy.check?.readDataSubset ?? DEFAULTS.checkReadDataSubset,
      drillSchedule: policy.drill?.schedule ?? DEFAULTS.drillSchedule,
    };
  }

  monitoring(layers: Layers, policy: MonitoringPolicy, host: Pick<ResolvedHost, 'machine' | 'exempt'>): ResolvedMonitoring {
    const at = (field: PolicyPath) => ['monitoring', ...field];
    const intervalSeconds = this.duration(layers, at(['interval']), policy.interval, DEFAULTS.monitoringInterval);
    const checks: ResolvedCheck[] = [];
    const skipped: ResolvedMonitoring['skipped'][number][] = [];
    for (const name of Object.keys(policy.checks ?? {}).sort()) {
      const check = policy.checks![name];
      if (check === false || check === undefined) continue;
      const why = notApplicable(check.kind, host);
      if (why !== undefined) {
        skipped.push({ name, kind: check.kind, why });
        continue;
      }
      checks.push({
        name,
        subject: layers.host,
        runsOn: check.from ?? layers.host,
        intervalSeconds: check.interval ? this.duration(layers, at(['checks', name, 'interval']), check.interval, DEFAULTS.monitoringInterval) : intervalSeconds,
        spec: check,
      });
    }
    return {
      intervalSeconds,
      failureThreshold: policy.failureThreshold ?? DEFAULTS.failureThreshold,
      recoveryThreshold: policy.recoveryThreshold ?? DEFAULTS.recoveryThreshold,
      slaSeconds: this.duration(layers, at(['sla']), policy.sla, DEFAULTS.sla),
      routes: (policy.routes ?? []).map((route, i) => ({
        name: route.name,
        ...(route.webhook !== undefined && { webhook: route.webhook }),
        ...(route.alertmanager !== undefined && { alertmanager: route.alertmanager }),
        ...(route.email !== undefined && { email: route.email }),
        ...(route.token && { token: route.token }),
        deliverySeconds: this.duration(layers, at(['routes', i, 'delivery']), route.delivery, DEFAULTS.routeDelivery),
        ...(route.repeatEvery !== undefined && { repeatSeconds: this.duration(layers, at(['routes', i, 'repeatEvery']), route.repeatEvery, '1h') }),
      })),
      ...(policy.heartbeat && { heartbeat: { url: policy.heartbeat.url, port: policy.heartbeat.port ?? DEFAULTS.heartbeatPort } }),
      checks,
      skipped,
    };
  }

  host(name: string, host: HostSpec): ResolvedHost {
    const groupSpec = Object.hasOwn(this.spec.groups, host.group) ? this.spec.groups[host.group] : undefined;
    const layers: Layers = { host: name, group: groupSpec ? host.group : undefined };
    if (!groupSpec) this.issue(['hosts', name, 'group'], `group "${host.group}" is not defined in groups`);
    const policy: MaintenancePolicy = [policyOf(this.spec.defaults), policyOf(groupSpec), policyOf(host)].reduce(layerPolicies);
    const exempt = host.exempt ?? {};
    const provisioning = this.spec.provisioning;
    // An exemption drops the inherited policy for that part: the reason replaces it.
    const updates = exempt.updates === undefined && policy.updates ? this.updates(layers, policy.updates) : undefined;
    const backups = exempt.backups === undefined && policy.backups ? this.backups(layers, policy.backups) : undefined;
    const machine = host.machine ?? (host.provision ? 'virtual' : 'bare-metal');
    const monitoring = exempt.monitoring === undefined && policy.monitoring ? this.monitoring(layers, policy.monitoring, { machine, exempt }) : undefined;
    return {
      name,
      group: host.group,
      roles: [...(host.roles ?? [])].sort(),
      packageFamily: host.packageFamily ?? DEFAULTS.packageFamily,
      machine,
      ...(host.address !== undefined && { address: host.address }),
      ...(host.hostKey !== undefined && { hostKey: host.hostKey }),
      port: host.port ?? DEFAULTS.port,
      ...(host.provision && {
        provision: {
          ...host.provision,
          image: host.provision.image ?? DEFAULTS.image,
          location: host.provision.location ?? provisioning?.location ?? DEFAULTS.location,
        },
      }),
      ...(updates && { updates }),
      ...(backups && { backups }),
      ...(monitoring && { monitoring }),
      exempt,
    };
  }

  groups(): ResolvedGroup[] {
    const { order, issues } = rolloutOrder(this.spec.groups);
    this.issues.push(...issues);
    const hostNames = Object.keys(this.spec.hosts).sort();
    return order.map((name) => {
      const g = this.spec.groups[name];
      const at = (field: string): PolicyPath => ['groups', name, field];
      if (g.batchSize !== undefined && !(Number.isInteger(g.batchSize) && g.batchSize >= 1)) this.issue(at('batchSize'), `batch size must be a whole number of at least 1, got ${g.batchSize}`);
      if (g.failureBudget !== undefined && !(Number.isInteger(g.failureBudget) && g.failureBudget >= 0)) this.issue(at('failureBudget'), `failure budget must be a whole number of at least 0, got ${g.failureBudget}`);
      const soakSeconds = tryParseDuration(g.soak ?? DEFAULTS.soak);
      if (soakSeconds === undefined) this.issue(at('soak'), `expected a duration such as 30m or 2h, got ${JSON.stringify(g.soak)}`);
      return {
        name,
        after: [...(g.after ?? [])].sort(),
        staging: g.staging ?? false,
        soakSeconds: soakSeconds ?? 0,
        batchSize: g.batchSize ?? DEFAULTS.batchSize,
        failureBudget: g.failureBudget ?? DEFAULTS.failureBudget,
        hosts: hostNames.filter((h) => this.spec.hosts[h].group === name),
      };
    });
  }
}

/** Checks of hardware a virtual machine does not have. */
export const HARDWARE_CHECKS: ReadonlySet<CheckKind> = new Set(['smart', 'cpu-temperature']);

/** Why a check does not apply to a host (then it is not compiled), or undefined when it does. */
function notApplicable(kind: CheckKind, host: Pick<ResolvedHost, 'machine' | 'exempt'>): string | undefined {
  if (HARDWARE_CHECKS.has(kind) && host.machine === 'virtual') return `a virtual machine has no ${kind === 'smart' ? 'disk SMART data' : 'CPU temperature sensor'} to check (say machine: "bare-metal" if it is one)`;
  if (kind === 'backup-freshness' && host.exempt.backups !== undefined) return 'the host is exempt from backups';
  if ((kind === 'security-updates' || kind === 'reboot-required') && host.exempt.updates !== undefined) return 'the host is exempt from updates';
  return undefined;
}

function resolveMitigation(m: Mitigation): ResolvedMitigation {
  const a = m.action;
  const action: ResolvedMitigation['action'] =
    'maskUnit' in a ? { kind: 'mask-unit', unit: a.maskUnit }
    : 'stopUnit' in a ? { kind: 'stop-unit', unit: a.stopUnit }
    : 'firewallPort' in a ? { kind: 'firewall-port', port: a.firewallPort, protocol: a.protocol ?? 'tcp' }
    : { kind: 'drop-in', path: a.dropIn.path, content: a.dropIn.content };
  return { id: m.id, package: m.package, ...(m.fixedIn !== undefined && { fixedIn: m.fixedIn }), action };
}

/** Applies defaults and layers; returns the resolved fleet and every issue found doing so. */
export function resolveFleet(spec: FleetSpec): ResolveResult {
  const r = new Resolver(spec);
  const groups = r.groups();
  const sets = resolveRebootSets(spec, Object.keys(spec.hosts).sort().map((name) => r.host(name, spec.hosts[name])));
  return {
    fleet: { name: spec.name, groups, hosts: sets.hosts, ...(spec.provisioning && { provisioning: spec.provisioning }) },
    issues: [...r.issues, ...sets.issues],
  };
}
