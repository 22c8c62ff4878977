// The infrastructure part of a plan: which Terraform resources are added, changed in place,
// replaced (destroyed and created again: a server's disk is lost) and destroyed. Computed offline
// from two synthesized stacks, or read from `tofu/terraform show -json` of a saved plan when an
// engine and credentials are there.

import { canonicalJson } from '../compile/canonical-json.ts';
import { mdCode } from './markdown-text.ts';
import { cappedLines, cappedNames, COMPACT_LIST_ITEMS } from './markdown-list.ts';

/** Resource addresses ("hcloud_server.web1"), each list sorted. */
export interface InfraDiff {
  readonly add: readonly string[];
  readonly change: readonly string[];
  readonly replace: readonly string[];
  readonly destroy: readonly string[];
}

/**
 * Arguments whose change makes the provider replace the resource (ForceNew / RequiresReplace in
 * the providers' source). Anything not listed changes in place.
 */
const FORCE_NEW: Readonly<Record<string, readonly string[]>> = {
  hcloud_server: ['image', 'location', 'datacenter', 'user_data', 'ssh_keys'],
  hcloud_ssh_key: ['public_key'],
  hcloud_firewall_attachment: ['firewall_id'],
  hcloud_network_subnet: ['network_id', 'type', 'network_zone', 'ip_range', 'vswitch_id'],
  hcloud_server_network: ['server_id', 'network_id', 'subnet_id', 'ip'],
  hcloud_volume: ['location'],
  hcloud_volume_attachment: ['volume_id', 'server_id'],
  hcloud_primary_ip: ['type', 'location', 'datacenter'],
  hcloud_rdns: ['ip_address', 'server_id', 'primary_ip_id', 'floating_ip_id', 'load_balancer_id'],
  tls_private_key: ['algorithm', 'rsa_bits', 'ecdsa_curve'],
};

/** Losing one of these loses data or a public address: the review must not miss it. */
const LOUD_TYPES = new Set(['hcloud_server', 'hcloud_volume', 'hcloud_primary_ip']);

/** Meta-arguments: changing them alone changes no resource. */
const META_ARGUMENTS = new Set(['//', 'lifecycle', 'depends_on', 'provider', 'provisioner', 'connection']);

interface StackResource {
  readonly type: string;
  readonly attributes: Readonly<Record<string, unknown>>;
  readonly ignoreChanges: ReadonlySet<string>;
}

function stackResources(files: Record<string, string> | undefined): Map<string, StackResource> {
  const resources = new Map<string, StackResource>();
  for (const [name, text] of Object.entries(files ?? {})) {
    if (!name.endsWith('.tf.json')) continue;
    const doc = JSON.parse(text) as { resource?: Record<string, Record<string, Record<string, unknown>>> };
    for (const [type, byName] of Object.entries(doc.resource ?? {})) {
      for (const [resourceName, body] of Object.entries(byName)) {
        const attributes = Object.fromEntries(Object.entries(body).filter(([k]) => !META_ARGUMENTS.has(k)));
        const ignore = (body.lifecycle as { ignore_changes?: unknown } | undefined)?.ignore_changes;
        resources.set(`${type}.${resourceName}`, { type, attributes, ignoreChanges: new Set(Array.isArray(ignore) ? (ignore as string[]) : []) });
      }
    }
  }
  return resources;
}

/** Addresses ("type.name") an attribute value refers to through ${...} expressions. */
function references(value: unknown): Set<string> {
  const found = new Set<string>();
  const text = JSON.stringify(value) ?? '';
  for (const expr of text.matchAll(/\$\{([^}]*)\}/g)) {
    for (const ref of expr[1].matchAll(/\b([a-z][a-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_-]*)\.[a-z_]/g)) found.add(`${ref[1]}.${ref[2]}`);
  }
  return found;
}

/** The offline diff of two synthesized stacks (the files of DIR/terraform/). */
export function diffInfra(base: Record<string, string> | undefined, current: Record<string, string> | undefined): InfraDiff {
  const before = stackResources(base);
  const after = stackResources(current);
  const add = [...after.keys()].filter((a) => !before.has(a));
  const destroy = [...before.keys()].filter((a) => !after.has(a));
  const replace = new Set<string>();
  const change = new Set<string>();

  // Arguments of each kept resource whose configured value differs.
  const changed = new Map<string, string[]>();
  for (const [address, now] of after) {
    const was = before.get(address);
    if (!was) continue;
    const keys = new Set([...Object.keys(was.attributes), ...Object.keys(now.attributes)]);
    changed.set(address, [...keys].filter((k) => !now.ignoreChanges.has(k) && canonicalJson(was.attributes[k]) !== canonicalJson(now.attributes[k])));
  }
  const forceNew = (type: string, args: readonly string[]): boolean => args.some((a) => FORCE_NEW[type]?.includes(a));
  for (const [address, args] of changed) {
    if (forceNew(after.get(address)!.type, args)) replace.add(address);
    else if (args.length > 0) change.add(address);
  }
  // A replaced resource gets new ids and addresses, unknown until apply: whatever refers to it
  // changes too, and is replaced itself when the reference sits in a force-new argument.
  for (let grew = true; grew; ) {
    grew = false;
    for (const [address, now] of after) {
      if (!changed.has(address) || replace.has(address)) continue;
      const stale = Object.entries(now.attributes)
        .filter(([k, v]) => !now.ignoreChanges.has(k) && [...references(v)].some((r) => replace.has(r)))
        .map(([k]) => k);
      if (stale.length === 0) continue;
      if (forceNew(now.type, stale)) {
        replace.add(address);
        change.delete(address);
        grew = true;
      } else if (!change.has(address)) {
        change.add(address);
      }
    }
  }
  const sorted = (xs: Iterable<string>) => [...xs].sort();
  return { add: sorted(add), change: sorted(change), replace: sorted(replace), destroy: sorted(destroy) };
}

interface PlanResourceChange {
  readonly address?: unknown;
  readonly mode?: unknown;
  readonly change?: { readonly actions?: unknown };
}

/** The resource changes of `tofu/terraform show -json <saved plan>`. */
export function infraDiffFromPlanJson(plan: unknown): InfraDiff {
  const changes = (plan as { resource_changes?: PlanResourceChange[] } | null)?.resource_changes;
  if (changes !== undefined && !Array.isArray(changes)) throw new Error('show -json output has no resource_changes list');
  const add: string[] = [];
  const change: string[] = [];
  const replace: string[] = [];
  const destroy: string[] = [];
  for (const rc of changes ?? []) {
    if (rc.mode !== 'managed' || typeof rc.address !== 'string') continue;
    const actions = Array.isArray(rc.change?.actions) ? (rc.change.actions as string[]).join(',') : '';
    if (actions === 'create') add.push(rc.address);
    else if (actions === 'update') change.push(rc.address);
    else if (actions === 'delete') destroy.push(rc.address);
    else if (actions === 'delete,create' || actions === 'create,delete') replace.push(rc.address);
    // no-op, read, and forget (dropped from state, left running) change nothing in the cloud.
  }
  return { add: add.sort(), change: change.sort(), replace: replace.sort(), destroy: destroy.sort() };
}

/**
 * What `now` (the engine's plan at apply time) destroys or replaces that `reviewed` did not show
 * as destroyed or replaced: each address with the action now planned, sorted.
 */
export function unreviewedLosses(reviewed: InfraDiff, now: InfraDiff): { readonly address: string; readonly action: 'destroy' | 'replace' }[] {
  const shown = new Set([...reviewed.destroy, ...reviewed.replace]);
  return [
    ...now.destroy.filter((a) => !shown.has(a)).map((address) => ({ address, action: 'destroy' as const })),
    ...now.replace.filter((a) => !shown.has(a)).map((address) => ({ address, action: 'replace' as const })),
  ].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
}

function resourceType(address: string): string {
  return address.replace(/^(module\.[^.]+\.)*/, '').split('.')[0];
}

/**
 * The infrastructure section of plan.md. `source` says where the diff came from (the engine's
 * saved plan or the offline diff), so a reviewer knows how much to trust it: markdown written by
 * upkeep itself, never a value of the policy. Addresses are escaped, as the engine reports them.
 */
export function renderInfraSection(diff: InfraDiff, source?: string, compact = false): string {
  const counts = `${diff.add.length} to add, ${diff.change.length} to change, ${diff.replace.length} to replace, ${diff.destroy.length} to destroy`;
  const lines = ['## Infrastructure', ''];
  if (source !== undefined) lines.push(`Source: ${source}.`, '');
  const loud = [...diff.replace.map((a) => [a, 'replace']), ...diff.destroy.map((a) => [a, 'destroy'])]
    .filter(([address]) => LOUD_TYPES.has(resourceType(address)))
    .map(([address, action]) => `${mdCode(address)} (${action})`);
  if (loud.length > 0) {
    lines.push(
      `> **WARNING: ${loud.length} server(s), volume(s) or address(es) will be DESTROYED or REPLACED.** Their disks, data or public IP addresses are lost: ${cappedNames(loud, compact ? COMPACT_LIST_ITEMS : Infinity)}. Make sure the data is backed up and restorable before this plan is applied.`,
      '',
    );
  }
  lines.push(`**${counts}**`, '');
  if (diff.add.length + diff.change.length + diff.replace.length + diff.destroy.length === 0) {
    lines.push('No infrastructure changes.', '');
    return lines.join('\n');
  }
  for (const [title, addresses] of [
    ['To add', diff.add],
    ['To change in place', diff.change],
    ['To replace (destroyed, then created again)', diff.replace],
    ['To destroy', diff.destroy],
  ] as const) {
    if (addresses.length === 0) continue;
    lines.push(`${title}:`, '', ...cappedLines(addresses.map((a) => `- ${mdCode(a)}`), compact, 'resource(s)'), '');
  }
  return lines.join('\n');
}
