// Policies layer fleet -> group -> host. A later layer overrides an earlier one field by field in
// the places where merging is what people mean (retention keys, security settings, checks by
// name); everything else (a window, a repository, a secret reference, a list) is replaced whole,
// because half of one window mixed with half of another is never what anyone wants.

import type { PolicyPath } from './errors.ts';
import type { FleetSpec, MaintenancePolicy, MonitoringPolicy } from './model.ts';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function mergeShallow<T extends object>(base: T | undefined, over: T | undefined): T | undefined {
  if (base === undefined) return over;
  if (over === undefined) return base;
  return { ...base, ...over };
}

function mergeUpdates(base: MaintenancePolicy['updates'], over: MaintenancePolicy['updates']): MaintenancePolicy['updates'] {
  const merged = mergeShallow(base, over);
  if (!merged || !base || !over) return merged;
  return { ...merged, security: mergeShallow(base.security, over.security) };
}

function mergeBackups(base: MaintenancePolicy['backups'], over: MaintenancePolicy['backups']): MaintenancePolicy['backups'] {
  const merged = mergeShallow(base, over);
  if (!merged || !base || !over) return merged;
  return {
    ...merged,
    retention: mergeShallow(base.retention, over.retention),
    check: mergeShallow(base.check, over.check),
    drill: mergeShallow(base.drill, over.drill),
  };
}

function mergeMonitoring(base: MonitoringPolicy | undefined, over: MonitoringPolicy | undefined): MonitoringPolicy | undefined {
  const merged = mergeShallow(base, over);
  if (!merged || !base || !over) return merged;
  return { ...merged, checks: mergeShallow(base.checks, over.checks) };
}

/** `over` layered on top of `base`. Neither is modified. */
export function layerPolicies(base: MaintenancePolicy, over: MaintenancePolicy): MaintenancePolicy {
  const out: Mutable<MaintenancePolicy> = {};
  const updates = mergeUpdates(base.updates, over.updates);
  const backups = mergeBackups(base.backups, over.backups);
  const monitoring = mergeMonitoring(base.monitoring, over.monitoring);
  if (updates) out.updates = updates;
  if (backups) out.backups = backups;
  if (monitoring) out.monitoring = monitoring;
  return out;
}

/** The policy part of a group or host spec (which also carries other fields). */
export function policyOf(layer: MaintenancePolicy | undefined): MaintenancePolicy {
  if (!layer) return {};
  const { updates, backups, monitoring } = layer;
  return { ...(updates && { updates }), ...(backups && { backups }), ...(monitoring && { monitoring }) };
}

/** Every policy layer the fleet writes (defaults, each group, each host), with its path. */
export function policyLayers(spec: FleetSpec): { path: PolicyPath; policy: MaintenancePolicy }[] {
  return [
    ...(spec.defaults ? [{ path: ['defaults'], policy: spec.defaults }] : []),
    ...Object.entries(spec.groups ?? {}).map(([name, policy]) => ({ path: ['groups', name], policy: policy as MaintenancePolicy })),
    ...Object.entries(spec.hosts ?? {}).map(([name, policy]) => ({ path: ['hosts', name], policy: policy as MaintenancePolicy })),
  ];
}
