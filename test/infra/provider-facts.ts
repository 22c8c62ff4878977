// What the hcloud and tls providers accept, written down independently of the bindings (from the
// providers' docs and Go source), so a synthesized stack can be checked the way `terraform
// validate` would check it, without an engine or provider binaries.

type ArgType = 'string' | 'number' | 'bool' | 'list(string)' | 'list(number)' | 'map(string)' | { block: Schema } | { enum: readonly string[] };

interface Schema {
  readonly required: readonly string[];
  readonly args: Readonly<Record<string, ArgType>>;
}

const LABELS = 'map(string)' as const;

export const PROVIDERS: Readonly<Record<string, Schema>> = {
  hcloud: { required: [], args: { token: 'string', endpoint: 'string', poll_interval: 'string', poll_function: { enum: ['constant', 'exponential'] } } },
  tls: { required: [], args: {} },
};

export const RESOURCES: Readonly<Record<string, Schema>> = {
  hcloud_server: {
    required: ['name', 'server_type'],
    args: {
      name: 'string',
      server_type: 'string',
      image: 'string',
      location: { enum: ['nbg1', 'fsn1', 'hel1', 'ash', 'hil', 'sin'] },
      user_data: 'string',
      ssh_keys: 'list(string)',
      public_net: { block: { required: [], args: { ipv4_enabled: 'bool', ipv6_enabled: 'bool', ipv4: 'number', ipv6: 'number' } } },
      network: { block: { required: [], args: { subnet_id: 'string', network_id: 'number', ip: 'string', alias_ips: 'list(string)' } } },
      labels: LABELS,
      firewall_ids: 'list(number)',
      placement_group_id: 'number',
      backups: 'bool',
      keep_disk: 'bool',
      allow_deprecated_images: 'bool',
      delete_protection: 'bool',
      rebuild_protection: 'bool',
      shutdown_before_deletion: 'bool',
      iso: 'string',
      rescue: { enum: ['linux64', 'linux32'] },
    },
  },
  hcloud_ssh_key: { required: ['name', 'public_key'], args: { name: 'string', public_key: 'string', labels: LABELS } },
  hcloud_firewall: {
    required: ['name'],
    args: {
      name: 'string',
      labels: LABELS,
      rule: {
        block: {
          required: ['direction', 'protocol'],
          args: {
            direction: { enum: ['in', 'out'] },
            protocol: { enum: ['tcp', 'udp', 'icmp', 'gre', 'esp'] },
            port: 'string',
            source_ips: 'list(string)',
            destination_ips: 'list(string)',
            description: 'string',
          },
        },
      },
      apply_to: { block: { required: [], args: { label_selector: 'string', server: 'number' } } },
    },
  },
  hcloud_firewall_attachment: { required: ['firewall_id'], args: { firewall_id: 'number', server_ids: 'list(number)', label_selectors: 'list(string)' } },
  hcloud_placement_group: { required: ['name', 'type'], args: { name: 'string', type: { enum: ['spread'] }, labels: LABELS } },
  hcloud_network: {
    required: ['name', 'ip_range'],
    args: { name: 'string', ip_range: 'string', labels: LABELS, delete_protection: 'bool', expose_routes_to_vswitch: 'bool' },
  },
  hcloud_network_subnet: {
    required: ['network_id', 'type', 'network_zone', 'ip_range'],
    args: { network_id: 'number', type: { enum: ['cloud', 'server', 'vswitch'] }, network_zone: { enum: ['eu-central', 'us-east', 'us-west', 'ap-southeast'] }, ip_range: 'string', vswitch_id: 'number' },
  },
  hcloud_server_network: { required: ['server_id'], args: { server_id: 'number', subnet_id: 'string', network_id: 'number', ip: 'string', alias_ips: 'list(string)' } },
  hcloud_volume: {
    required: ['name', 'size'],
    args: { name: 'string', size: 'number', location: 'string', server_id: 'number', automount: 'bool', format: { enum: ['xfs', 'ext4'] }, labels: LABELS, delete_protection: 'bool' },
  },
  hcloud_volume_attachment: { required: ['volume_id', 'server_id'], args: { volume_id: 'number', server_id: 'number', automount: 'bool' } },
  hcloud_primary_ip: {
    required: ['type', 'assignee_type', 'auto_delete'],
    args: {
      type: { enum: ['ipv4', 'ipv6'] },
      assignee_type: { enum: ['server'] },
      auto_delete: 'bool',
      name: 'string',
      location: 'string',
      assignee_id: 'number',
      labels: LABELS,
      delete_protection: 'bool',
    },
  },
  hcloud_rdns: {
    required: ['ip_address', 'dns_ptr'],
    args: { ip_address: 'string', dns_ptr: 'string', server_id: 'number', primary_ip_id: 'number', floating_ip_id: 'number', load_balancer_id: 'number' },
  },
  tls_private_key: { required: ['algorithm'], args: { algorithm: { enum: ['RSA', 'ECDSA', 'ED25519'] }, rsa_bits: 'number', ecdsa_curve: { enum: ['P224', 'P256', 'P384', 'P521'] } } },
};

/** Arguments every resource may carry besides its own. */
const META = new Set(['//', 'lifecycle', 'depends_on', 'provider', 'count', 'for_each']);

/** A whole-value Terraform expression, whose type only the engine knows. */
const EXPRESSION = /^\$\{[^]*\}$/;

function checkValue(type: ArgType, value: unknown, at: string, problems: string[]): void {
  if (typeof value === 'string' && EXPRESSION.test(value)) return;
  if (typeof type === 'object' && 'enum' in type) {
    if (typeof value !== 'string' || !type.enum.includes(value)) problems.push(`${at}: ${JSON.stringify(value)} is not one of ${type.enum.join(', ')}`);
    return;
  }
  if (typeof type === 'object') {
    if (!Array.isArray(value)) problems.push(`${at}: expected a list of blocks`);
    else value.forEach((block, i) => checkBody(type.block, block as Record<string, unknown>, `${at}[${i}]`, problems, false));
    return;
  }
  const scalar = (t: string, v: unknown, where: string) => {
    if (typeof v === 'string' && EXPRESSION.test(v)) return;
    const ok = t === 'string' ? typeof v === 'string' : t === 'number' ? typeof v === 'number' : typeof v === 'boolean';
    if (!ok) problems.push(`${where}: expected a ${t}, got ${JSON.stringify(v)}`);
  };
  const list = /^list\((\w+)\)$/.exec(type);
  if (list) {
    if (!Array.isArray(value)) problems.push(`${at}: expected a list`);
    else value.forEach((v, i) => scalar(list[1], v, `${at}[${i}]`));
  } else if (type === 'map(string)') {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) problems.push(`${at}: expected a map`);
    else for (const [k, v] of Object.entries(value)) scalar('string', v, `${at}.${k}`);
  } else {
    scalar(type, value, at);
  }
}

function checkBody(schema: Schema, body: Record<string, unknown>, at: string, problems: string[], topLevel: boolean): void {
  for (const name of schema.required) if (body[name] === undefined) problems.push(`${at}: required argument ${name} is missing`);
  for (const [name, value] of Object.entries(body)) {
    if (topLevel && META.has(name)) continue;
    const type = schema.args[name];
    if (!type) problems.push(`${at}: unknown argument ${name}`);
    else checkValue(type, value, `${at}.${name}`, problems);
  }
}

/** Every way the stack disagrees with the provider facts; empty when it agrees. */
export function providerFactProblems(stack: any): string[] {
  const problems: string[] = [];
  for (const [name, configs] of Object.entries<any>(stack.provider ?? {})) {
    const schema = PROVIDERS[name];
    if (!schema) problems.push(`provider.${name}: unknown provider`);
    else for (const [i, config] of (configs as any[]).entries()) checkBody(schema, config, `provider.${name}[${i}]`, problems, true);
  }
  for (const [type, byName] of Object.entries<any>(stack.resource ?? {})) {
    const schema = RESOURCES[type];
    if (!schema) {
      problems.push(`resource ${type}: unknown resource type`);
      continue;
    }
    for (const [name, body] of Object.entries<any>(byName)) checkBody(schema, body, `${type}.${name}`, problems, true);
  }
  return problems;
}
