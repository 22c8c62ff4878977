// Policy -> Terraform stack. Every host with a `provision` spec becomes a Hetzner Cloud server;
// the stack is synthesized by cdktf into a temporary directory (never the project, whatever the
// working directory) and returned as the files of DIR/terraform/: deterministic, without absolute
// paths and without secret values (the token is a sensitive variable the applier fills in).

import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Fn, TerraformElement, TerraformOutput, TerraformStack, TerraformVariable, Token } from 'cdktf';
import type { Node } from 'constructs';
import { PolicyError, type PolicyIssue } from '../policy/errors.ts';
import type { ProvisioningSpec } from '../policy/model.ts';
import type { ResolvedFleet, ResolvedHost } from '../policy/resolved.ts';
import { canonicalJson } from './canonical-json.ts';
import { bootstrapUserData } from './cloud-init.ts';
import { Firewall, HcloudProvider, Network, NetworkSubnet, PlacementGroup, PrimaryIp, Rdns, Server, ServerNetwork, SshKey, Volume, VolumeAttachment, type FirewallRule, type NetworkZone } from './hcloud/index.ts';
import { TlsProvider, hostKey } from './host-keys.ts';
import { readyPortOf } from './reboot-set.ts';
import { addStateBackend, stateBackendIssues } from './state-backend.ts';
import { terraformLiteral, terraformLiterals } from './terraform-literal.ts';

/** The one file of DIR/terraform/. */
export const STACK_FILE = 'main.tf.json';
/** The sensitive variable that carries the Hetzner token (the applier sets TF_VAR_hcloud_token). */
export const TOKEN_VARIABLE = 'hcloud_token';
/**
 * The Terraform output the applier reads for provisioned hosts (`terraform output -json`):
 * `upkeep_hosts = { <host> = { address = "203.0.113.7", host_key = "ssh-ed25519 AAAA...", port = 22 } }`.
 */
export const TERRAFORM_HOSTS_OUTPUT = 'upkeep_hosts';

export interface SynthesizeInfraOptions {
  /**
   * The project directory as seen from the directory the stack is written to (DIR/terraform), e.g.
   * "../..". A local state path is relative to the project; this makes it relative to where the
   * engine runs, so the state never lands inside a plan directory that is replaced on every plan.
   * @default "."
   */
  readonly projectDir?: string;
}

/** Hetzner allows at most this many servers in one spread placement group. */
const SPREAD_GROUP_LIMIT = 10;

const NETWORK_ZONES: Readonly<Record<string, NetworkZone>> = { nbg1: 'eu-central', fsn1: 'eu-central', hel1: 'eu-central', ash: 'us-east', hil: 'us-west', sin: 'ap-southeast' };

const ANYWHERE = ['0.0.0.0/0', '::/0'];

/** Public services each role offers, opened to the world. */
const ROLE_PORTS: Readonly<Partial<Record<string, readonly { protocol: 'tcp' | 'udp'; port: string; description: string }[]>>> = {
  web: [
    { protocol: 'tcp', port: '80', description: 'http' },
    { protocol: 'tcp', port: '443', description: 'https' },
  ],
  mail: [
    { protocol: 'tcp', port: '25', description: 'smtp' },
    { protocol: 'tcp', port: '587', description: 'submission' },
    { protocol: 'tcp', port: '993', description: 'imaps' },
  ],
  dns: [
    { protocol: 'tcp', port: '53', description: 'dns' },
    { protocol: 'udp', port: '53', description: 'dns' },
  ],
};

// Hetzner label values: at most 63 characters, alphanumerics at both ends, "-_." inside.
const LABEL_VALUE = /^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;
// A host name is also the server's hostname (RFC 1123) and part of Terraform addresses.
const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
// A group name is a label value and part of Terraform addresses, which take no ".".
const GROUP_NAME = /^[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$/;

/**
 * Runs `build` without recording call stacks. cdktf records the call stack of every token it
 * creates (a few per resource, more while resolving them) for its error messages, at unlimited
 * depth: formatting them through the source maps tsx installs took a fifth of a large fleet's
 * synth, and only capturing the frames still a sixth. The policy is validated before the stack is
 * built (infraIssues), so those messages would only ever describe a bug here; an error thrown
 * meanwhile still has its message.
 */
function withoutCreationStacks<T>(build: () => T): T {
  const previous = { prepare: Error.prepareStackTrace, capture: Error.captureStackTrace };
  Error.prepareStackTrace = () => '';
  Error.captureStackTrace = () => undefined;
  try {
    return build();
  } finally {
    Error.prepareStackTrace = previous.prepare;
    Error.captureStackTrace = previous.capture;
  }
}

/** Stack whose Terraform names are the part of a construct id after "kind:", e.g. hcloud_server.web1. */
class FleetStack extends TerraformStack {
  protected override allocateLogicalId(element: TerraformElement | Node): string {
    const id = (element instanceof TerraformElement ? element.node : element).id;
    const name = id.slice(id.indexOf(':') + 1);
    // Terraform names start with a letter or underscore; host names may start with a digit.
    return /^[A-Za-z_]/.test(name) ? name : `_${name}`;
  }

  // app.synth() first resolves every element once only to let cross-stack references add their
  // outputs, then resolves it all again to write it: the first pass was a third of a large
  // fleet's synth. This app has one stack, so there is nothing for it to find.
  override prepareStack(): void {
    this.ensureBackendExists();
  }
}

/**
 * The files of DIR/terraform/ (e.g. {"main.tf.json": "..."}), keys sorted, or undefined when no
 * host is provisioned. `hostGenerations` maps a host to a hash of its compiled policy; it becomes a
 * server label, which changes in place and so never disturbs a server.
 */
export function synthesizeInfra(fleet: ResolvedFleet, hostGenerations: Record<string, string>, options: SynthesizeInfraOptions = {}): Record<string, string> | undefined {
  const hosts = fleet.hosts.filter((h) => h.provision);
  if (hosts.length === 0) return undefined;
  const provisioning = fleet.provisioning;
  if (!provisioning) throw new PolicyError(hosts.map((h) => ({ path: ['hosts', h.name, 'provision'], message: 'provisioned hosts need a provisioning section (token, operator keys, admin networks) in the fleet' })));
  const issues = infraIssues(fleet, hosts, provisioning);
  if (issues.length > 0) throw new PolicyError(issues);

  const outdir = mkdtempSync(join(tmpdir(), 'upkeep-cdktf-'));
  try {
    const app = new App({ outdir, stackTraces: false, hclOutput: false, skipValidation: false });
    const stack = new FleetStack(app, 'upkeep');
    // Everything the policy wrote reaches the stack as literal text, never as a Terraform expression.
    const literal = terraformLiterals(fleet);
    withoutCreationStacks(() => {
      buildStack(stack, literal, literal.hosts.filter((h) => h.provision), literal.provisioning!, hostGenerations, terraformLiteral(options.projectDir ?? '.'));
      app.synth();
    });
    // The document cdktf wrote into the temporary directory, with keys sorted. Read back rather
    // than asked of the stack again: stack.toTerraform() would resolve every token a second time.
    const manifest = JSON.parse(readFileSync(join(outdir, 'manifest.json'), 'utf8')) as { stacks: Record<string, { synthesizedStackPath: string }> };
    const written = readFileSync(join(outdir, manifest.stacks[stack.node.id].synthesizedStackPath), 'utf8');
    return { [STACK_FILE]: `${canonicalJson(JSON.parse(written), 2)}\n` };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

function infraIssues(fleet: ResolvedFleet, hosts: readonly ResolvedHost[], provisioning: ProvisioningSpec): PolicyIssue[] {
  const issues: PolicyIssue[] = [...stateBackendIssues(provisioning.stateBackend)];
  if (!LABEL_VALUE.test(fleet.name)) issues.push({ path: ['name'], message: 'a provisioned fleet name becomes a Hetzner label: letters, digits, "-", "_" and "." only, at most 63 characters' });
  for (const host of hosts) {
    if (!HOST_NAME.test(host.name)) issues.push({ path: ['hosts', host.name], message: 'a provisioned host name becomes its hostname: letters, digits and "-" only, at most 63 characters' });
    if (!GROUP_NAME.test(host.group)) issues.push({ path: ['hosts', host.name, 'group'], message: 'the group of a provisioned host becomes a Hetzner label: letters, digits, "-" and "_" only, at most 63 characters' });
    if (provisioning.privateNetwork && !NETWORK_ZONES[host.provision!.location]) {
      issues.push({ path: ['hosts', host.name, 'provision', 'location'], message: `no network zone known for location "${host.provision!.location}" (known: ${Object.keys(NETWORK_ZONES).join(', ')})` });
    }
  }
  if (provisioning.privateNetwork && !parsePrivateCidr(provisioning.privateNetwork)) {
    issues.push({ path: ['provisioning', 'privateNetwork'], message: `must be an RFC 1918 IPv4 range such as "10.0.0.0/16", got ${JSON.stringify(provisioning.privateNetwork)}` });
  }
  const provisioned = new Set(hosts.map((h) => h.name));
  for (const [set, members] of rebootSets(fleet)) {
    if (!members.some((m) => provisioned.has(m.name))) continue;
    for (const member of members) {
      if (!member.provision && !ipLiteral(member.address)) {
        issues.push({ path: ['hosts', member.name, 'address'], message: `is in reboot set "${set}" with provisioned hosts, whose firewall admits the other members by IP address: give an IP address, not a host name` });
      }
    }
  }
  for (const [backupHost, clients] of backupClients(fleet, hosts)) {
    for (const client of clients) {
      if (!client.provision && !ipLiteral(client.address)) {
        issues.push({ path: ['hosts', client.name, 'address'], message: `backs up to ${backupHost.name}, whose firewall admits clients by IP address: give an IP address, not a host name` });
      }
    }
  }
  for (const [monitor, watchers] of heartbeatWatchers(fleet, hosts)) {
    for (const watcher of watchers) {
      if (!watcher.provision && !ipLiteral(watcher.address)) {
        issues.push({ path: ['hosts', watcher.name, 'address'], message: `watches ${monitor.name}'s heartbeat, whose firewall admits watchers by IP address: give an IP address, not a host name` });
      }
    }
  }
  return issues;
}

/**
 * Hosts that share a group and the same roles are spread over different physical machines.
 * Hetzner spreads at most SPREAD_GROUP_LIMIT servers per placement group, so a larger set is
 * split, in name order, into groups of that size ("-2", "-3", ...): hosts added with names that
 * sort last (web11, web12, ...) join the last group and leave the others as they are.
 */
function placementGroups(hosts: readonly ResolvedHost[]): Map<string, ResolvedHost[]> {
  const sets = new Map<string, ResolvedHost[]>();
  for (const host of hosts) {
    const key = `${host.group}-${[...host.roles].sort().join('-') || 'none'}`;
    const members = sets.get(key);
    if (members) members.push(host);
    else sets.set(key, [host]);
  }
  const groups = new Map<string, ResolvedHost[]>();
  for (const [key, members] of sets) {
    const sorted = [...members].sort((a, b) => (a.name < b.name ? -1 : 1));
    for (let i = 0; i < sorted.length; i += SPREAD_GROUP_LIMIT) {
      groups.set(i === 0 ? key : `${key}-${i / SPREAD_GROUP_LIMIT + 1}`, sorted.slice(i, i + SPREAD_GROUP_LIMIT));
    }
  }
  return groups;
}

/** Provisioned backup hosts with the hosts that keep their backups there. */
function backupClients(fleet: ResolvedFleet, provisioned: readonly ResolvedHost[]): Map<ResolvedHost, ResolvedHost[]> {
  // One pass over the fleet, not one per backup host: a fleet of 10,000 has 50 backup hosts.
  const byRepositoryHost = new Map<string, ResolvedHost[]>();
  for (const h of fleet.hosts) {
    const repositoryHost = h.backups?.repositoryHost;
    if (repositoryHost === undefined || repositoryHost === h.name) continue;
    const clients = byRepositoryHost.get(repositoryHost);
    if (clients) clients.push(h);
    else byRepositoryHost.set(repositoryHost, [h]);
  }
  const result = new Map<ResolvedHost, ResolvedHost[]>();
  for (const backupHost of provisioned) {
    const clients = byRepositoryHost.get(backupHost.name);
    if (clients) result.set(backupHost, clients);
  }
  return result;
}

function ipLiteral(address: string | undefined): '4' | '6' | undefined {
  if (!address) return undefined;
  if (/^(\d{1,3})(\.\d{1,3}){3}$/.test(address) && address.split('.').every((o) => Number(o) <= 255)) return '4';
  if (/^[0-9A-Fa-f:]+$/.test(address) && address.includes(':')) return '6';
  return undefined;
}

function parsePrivateCidr(cidr: string): { base: number; prefix: number } | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (octets.some((o) => o > 255) || prefix > 30) return undefined;
  const base = octets.reduce((acc, o) => acc * 256 + o, 0);
  const [a, b] = octets;
  const rfc1918 = (a === 10 && prefix >= 8) || (a === 172 && b >= 16 && b <= 31 && prefix >= 12) || (a === 192 && b === 168 && prefix >= 16);
  const aligned = base % 2 ** (32 - prefix) === 0;
  return rfc1918 && aligned ? { base, prefix } : undefined;
}

function formatCidr(base: number, prefix: number): string {
  return `${[24, 16, 8, 0].map((shift) => Math.floor(base / 2 ** shift) % 256).join('.')}/${prefix}`;
}

/** One subnet per network zone: the whole range for one zone, equal parts of it for several. */
function zoneSubnets(cidr: string, zones: readonly NetworkZone[]): Map<NetworkZone, string> {
  const { base, prefix } = parsePrivateCidr(cidr)!;
  const bits = Math.ceil(Math.log2(zones.length));
  const size = 2 ** (32 - prefix - bits);
  return new Map(zones.map((zone, i) => [zone, formatCidr(base + i * size, prefix + bits)]));
}

function labelValue(value: string): string {
  // A generation is a long hash; Hetzner keeps 63 characters, which still names it unambiguously.
  return value.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 63).replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
}

function serverLabels(fleet: ResolvedFleet, host: ResolvedHost, generation: string | undefined): Record<string, string> {
  return {
    'upkeep-fleet': fleet.name,
    'upkeep-group': host.group,
    'upkeep-host': host.name,
    ...(generation !== undefined && { 'upkeep-policy': labelValue(generation) }),
    ...Object.fromEntries(host.roles.map((role) => [`upkeep-role-${role}`, 'true'])),
  };
}

function buildStack(stack: TerraformStack, fleet: ResolvedFleet, hosts: readonly ResolvedHost[], provisioning: ProvisioningSpec, generations: Record<string, string>, projectDir: string): void {
  addStateBackend(stack, provisioning.stateBackend, projectDir);
  // Both engines understand `endpoints` and the other S3 options from 1.6 on.
  stack.addOverride('terraform.required_version', '>= 1.6.0');
  const token = new TerraformVariable(stack, `variable:${TOKEN_VARIABLE}`, {
    type: 'string',
    sensitive: true,
    nullable: true,
    description: 'Hetzner Cloud API token; when null the provider reads HCLOUD_TOKEN',
  });
  // cdktf cannot express a null default; without one a run by hand would insist on the variable.
  token.addOverride('default', null);
  new HcloudProvider(stack, 'provider:hcloud', { token: token.stringValue });
  new TlsProvider(stack, 'provider:tls');

  const fleetLabels = { 'upkeep-fleet': fleet.name };
  const selector = (...labels: string[]): string => [`upkeep-fleet=${fleet.name}`, ...labels].join(',');

  const operatorKeys = [...new Set(provisioning.operatorKeys)].sort().map((publicKey) => {
    // Named by the key itself, so adding or removing another key leaves this one alone.
    const id = createHash('sha256').update(publicKey.trim()).digest('hex').slice(0, 12);
    return new SshKey(stack, `ssh_key:operator-${id}`, { name: `${fleet.name}-operator-${id}`, publicKey: publicKey.trim(), labels: fleetLabels });
  });

  // Each reference to an attribute (k.id) is a new token for cdktf to make and resolve: the ones
  // every server shares are made once.
  const operatorKeyIds = operatorKeys.map((k) => k.id);
  const placement = new Map<string, number>();
  for (const [key, members] of placementGroups(hosts)) {
    const group = new PlacementGroup(stack, `placement_group:${key}`, { name: `${fleet.name}-${key}`, type: 'spread', labels: { ...fleetLabels, 'upkeep-group': members[0].group } });
    const groupId = Token.asNumber(group.id);
    for (const member of members) placement.set(member.name, groupId);
  }

  const network = provisioning.privateNetwork ? new Network(stack, 'network:private', { name: `${fleet.name}-private`, ipRange: provisioning.privateNetwork, labels: fleetLabels }) : undefined;
  const zones = [...new Set(hosts.map((h) => NETWORK_ZONES[h.provision!.location]))].sort();
  const subnets = new Map<NetworkZone, NetworkSubnet>();
  if (network) {
    for (const [zone, ipRange] of zoneSubnets(provisioning.privateNetwork!, zones)) {
      subnets.set(zone, new NetworkSubnet(stack, `subnet:private-${zone}`, { networkId: Token.asNumber(network.id), type: 'cloud', networkZone: zone, ipRange }));
    }
  }

  const servers = new Map<string, { server: Server; address: PrimaryIp }>();
  const inventory: Record<string, { address: string; host_key: string; port: number }> = {};
  for (const host of hosts) {
    const provision = host.provision!;
    const labels = serverLabels(fleet, host, generations[host.name]);
    // The policy hash only on the server: addresses and volumes need not change with every policy.
    const resourceLabels = { ...fleetLabels, 'upkeep-host': host.name };
    const key = hostKey(stack, `tls_private_key:${host.name}`);
    // The address outlives the server: replacing a server keeps its IP, its DNS and its PTR record.
    const address = new PrimaryIp(stack, `primary_ip:${host.name}`, { name: `${fleet.name}-${host.name}-ipv4`, type: 'ipv4', assigneeType: 'server', autoDelete: false, location: provision.location, labels: resourceLabels });
    const addressId = Token.asNumber(address.id);
    const server = new Server(stack, `server:${host.name}`, {
      name: host.name,
      serverType: provision.serverType,
      image: provision.image,
      location: provision.location,
      userData: bootstrapUserData(host.name, key, host.port),
      sshKeys: operatorKeyIds,
      publicNet: [{ ipv4Enabled: true, ipv4: addressId, ipv6Enabled: true }],
      placementGroupId: placement.get(host.name)!,
      labels,
      // First-boot settings only: operator keys are maintained by the host rollout from then on,
      // and a newer bootstrap document must not rebuild servers that already run.
      lifecycle: { ignoreChanges: ['ssh_keys', 'user_data'] },
    });
    servers.set(host.name, { server, address });
    const serverId = Token.asNumber(server.id);
    const ipAddress = address.ipAddress;
    inventory[host.name] = { address: ipAddress, host_key: Fn.trimspace(key.publicKeyOpenssh), port: host.port };

    if (network) {
      new ServerNetwork(stack, `server_network:${host.name}`, { serverId, subnetId: subnets.get(NETWORK_ZONES[provision.location])!.id });
    }
    if (provision.reverseDns) {
      new Rdns(stack, `rdns:${host.name}`, { primaryIpId: addressId, ipAddress, dnsPtr: provision.reverseDns });
    }
    if (provision.volumeSize !== undefined) {
      // Deletion protection: the backups on it must survive a mistaken plan.
      const volume = new Volume(stack, `volume:${host.name}`, { name: `${fleet.name}-${host.name}-data`, size: provision.volumeSize, location: provision.location, format: 'ext4', labels: resourceLabels, deleteProtection: true });
      // A backup host mounts its volume at the backup root itself (upkeep-backup-volume.service);
      // Hetzner's automount would mount it a second time, at /mnt/HC_Volume_<id>.
      const receivesBackups = fleet.hosts.some((h) => h.name !== host.name && h.backups?.repositoryHost === host.name);
      new VolumeAttachment(stack, `volume_attachment:${host.name}`, { volumeId: Token.asNumber(volume.id), serverId, automount: !receivesBackups });
    }
  }

  addFirewalls(stack, fleet, hosts, provisioning, servers, selector, fleetLabels);
  new TerraformOutput(stack, `output:${TERRAFORM_HOSTS_OUTPUT}`, { value: inventory, description: 'address, pinned ssh host key and port of every provisioned host' });
}

function addFirewalls(
  stack: TerraformStack,
  fleet: ResolvedFleet,
  hosts: readonly ResolvedHost[],
  provisioning: ProvisioningSpec,
  servers: ReadonlyMap<string, { server: Server; address: PrimaryIp }>,
  selector: (...labels: string[]) => string,
  labels: Record<string, string>,
): void {
  // Firewalls select servers by label, so a server is covered from its first boot and servers
  // never reference firewalls (the backup firewall references the clients' addresses instead).
  const sshPorts = [...new Set(hosts.map((h) => h.port))].sort((a, b) => a - b);
  new Firewall(stack, 'firewall:base', {
    name: `${fleet.name}-base`,
    labels,
    rule: [
      ...sshPorts.map((port): FirewallRule => ({ direction: 'in', protocol: 'tcp', port: String(port), sourceIps: [...provisioning.adminNetworks].sort(), description: 'ssh from the admin networks' })),
      { direction: 'in', protocol: 'icmp', sourceIps: ANYWHERE, description: 'ping and path MTU discovery' },
    ],
    applyTo: [{ labelSelector: selector() }],
  });
  const roles = [...new Set(hosts.flatMap((h) => h.roles))].sort();
  for (const role of roles) {
    const services = ROLE_PORTS[role];
    if (!services) continue;
    new Firewall(stack, `firewall:${role}`, {
      name: `${fleet.name}-${role}`,
      labels,
      rule: services.map((s): FirewallRule => ({ direction: 'in', protocol: s.protocol, port: s.port, sourceIps: ANYWHERE, description: s.description })),
      applyTo: [{ labelSelector: selector(`upkeep-role-${role}`) }],
    });
  }
  // A host's addresses as firewall sources: a provisioned one's IPv4 and IPv6 network, another's
  // policy address (validation requires an IP literal there).
  const sourcesOf = (peers: readonly ResolvedHost[]): string[] =>
    peers.flatMap((peer) => {
      const provisioned = servers.get(peer.name);
      if (provisioned) return [`${provisioned.address.ipAddress}/32`, provisioned.server.ipv6Network];
      return [ipLiteral(peer.address) === '4' ? `${peer.address}/32` : `${peer.address}/128`];
    });
  for (const [backupHost, clients] of backupClients(fleet, hosts)) {
    new Firewall(stack, `firewall:backup-${backupHost.name}`, {
      name: `${fleet.name}-backup-${backupHost.name}`,
      labels,
      rule: [{ direction: 'in', protocol: 'tcp', port: String(backupHost.port), sourceIps: sourcesOf(clients), description: `ssh (sftp) from the hosts that back up to ${backupHost.name}` }],
      applyTo: [{ labelSelector: selector(`upkeep-host=${backupHost.name}`) }],
    });
  }
  for (const [monitor, watchers] of heartbeatWatchers(fleet, hosts)) {
    new Firewall(stack, `firewall:heartbeat-${monitor.name}`, {
      name: `${fleet.name}-heartbeat-${monitor.name}`,
      labels,
      rule: [{ direction: 'in', protocol: 'tcp', port: String(monitor.monitoring!.heartbeat!.port), sourceIps: sourcesOf(watchers), description: `the liveness time, read by the hosts that watch ${monitor.name}` }],
      applyTo: [{ labelSelector: selector(`upkeep-host=${monitor.name}`) }],
    });
  }
  // The members of a reboot set ask each other whether they are ready (lib/compile/reboot-set.ts).
  for (const [set, members] of rebootSets(fleet)) {
    const provisioned = members.filter((m) => servers.has(m.name));
    if (provisioned.length === 0) continue;
    new Firewall(stack, `firewall:reboot-set-${set}`, {
      name: `${fleet.name}-reboot-set-${set}`,
      labels,
      rule: [
        { direction: 'in', protocol: 'tcp', port: `${readyPortOf(0)}-${readyPortOf(members.length - 1)}`, sourceIps: sourcesOf(members), description: `readiness, asked by the other members of reboot set ${set}` },
        // Whether a member serves at all (its ssh port unless the set names one), where no role
        // opens that port to anyone: the other members would otherwise never see it answer.
        ...probePorts(members, provisioned).map((port): FirewallRule => ({ direction: 'in', protocol: 'tcp', port: String(port), sourceIps: sourcesOf(members), description: `whether it serves, asked by the other members of reboot set ${set}` })),
      ],
      applyTo: provisioned.map((m) => ({ labelSelector: selector(`upkeep-host=${m.name}`) })),
    });
  }
}

/** Provisioned monitors with a heartbeat, each with the hosts whose monitor-heartbeat checks read it. */
function heartbeatWatchers(fleet: ResolvedFleet, provisioned: readonly ResolvedHost[]): Map<ResolvedHost, ResolvedHost[]> {
  const result = new Map<ResolvedHost, ResolvedHost[]>();
  for (const monitor of provisioned) {
    if (!monitor.monitoring?.heartbeat) continue;
    const watching = new Set(
      fleet.hosts.flatMap((h) => h.monitoring?.checks ?? []).filter((c) => c.spec.kind === 'monitor-heartbeat' && c.spec.monitor === monitor.name && c.runsOn !== monitor.name).map((c) => c.runsOn),
    );
    const watchers = fleet.hosts.filter((h) => watching.has(h.name));
    if (watchers.length > 0) result.set(monitor, watchers);
  }
  return result;
}

/**
 * The TCP ports on which the members of a reboot set look whether their peers serve, in order,
 * but those that the roles of every provisioned member already open to anyone (dns: 53).
 */
function probePorts(members: readonly ResolvedHost[], provisioned: readonly ResolvedHost[]): number[] {
  const ports = [...new Set(members.flatMap((m) => m.updates?.rebootSet?.peers.map((p) => p.port) ?? []))];
  const openToAnyone = (host: ResolvedHost, port: number) => host.roles.some((role) => ROLE_PORTS[role]?.some((s) => s.protocol === 'tcp' && s.port === String(port)));
  return ports.filter((port) => !provisioned.every((m) => openToAnyone(m, port))).sort((a, b) => a - b);
}

/** The members of every reboot set, by set name. */
function rebootSets(fleet: ResolvedFleet): [string, ResolvedHost[]][] {
  const sets = new Map<string, ResolvedHost[]>();
  for (const host of fleet.hosts) {
    const set = host.updates?.rebootSet?.set;
    if (set !== undefined) sets.set(set, [...(sets.get(set) ?? []), host]);
  }
  return [...sets].sort(([a], [b]) => a.localeCompare(b));
}
