import { describe, expect, it } from 'vitest';
import { STACK_FILE, synthesizeInfra } from '../../lib/compile/infra.ts';
import { PolicyError } from '../../lib/policy/errors.ts';
import { ADMIN_NETWORKS, OPERATOR_KEYS, generationsOf, infraFleet } from '../fixtures/infra-fleet.ts';
import { providerFactProblems } from './provider-facts.ts';

function stackOf(fleet = infraFleet(), options = {}): any {
  const files = synthesizeInfra(fleet, generationsOf(fleet), options);
  expect(files && Object.keys(files)).toEqual([STACK_FILE]);
  return JSON.parse(files![STACK_FILE]);
}

const resources = (stack: any, type: string): Record<string, any> => stack.resource[type] ?? {};

function firewallRules(stack: any, name: string): { protocol: string; port?: string; source_ips: string[] }[] {
  return resources(stack, 'hcloud_firewall')[name].rule;
}

describe('the synthesized stack of a provisioned fleet', () => {
  const stack = stackOf();

  it('agrees with the provider facts: required arguments, no unknown ones, valid enumerations, numbers where numbers go', () => {
    expect(providerFactProblems(stack)).toEqual([]);
  });

  it('would be caught by the provider facts check if an argument were wrong', () => {
    const broken = structuredClone(stack);
    broken.resource.hcloud_volume.backup1.size = '500';
    broken.resource.hcloud_server.web1.datacenter = 'nbg1-dc3';
    broken.resource.hcloud_placement_group['production-web'].type = 'pack';
    delete broken.resource.hcloud_server.web2.server_type;
    expect(providerFactProblems(broken)).toEqual([
      'hcloud_placement_group.production-web.type: "pack" is not one of spread',
      'hcloud_server.web1: unknown argument datacenter',
      'hcloud_server.web2: required argument server_type is missing',
      'hcloud_volume.backup1.size: expected a number, got "500"',
    ]);
  });

  it('never emits the deprecated datacenter argument', () => {
    expect(JSON.stringify(stack)).not.toContain('datacenter');
  });

  it('creates one server per provisioned host and none for an existing host', () => {
    expect(Object.keys(resources(stack, 'hcloud_server')).sort()).toEqual(['backup1', 'mail1', 'monitor1', 'ns1', 'ns2', 'stage1', 'web1', 'web2']);
    expect(resources(stack, 'hcloud_server').web2).toMatchObject({ name: 'web2', server_type: 'cx32', image: 'debian-12', location: 'fsn1' });
    expect(resources(stack, 'hcloud_server').ns1.image).toBe('ubuntu-24.04');
  });

  it('labels each server with its fleet, group, roles and policy generation', () => {
    const fleet = infraFleet();
    const stage1 = resources(stack, 'hcloud_server').stage1;
    expect(stage1.labels).toEqual({
      'upkeep-fleet': 'acme',
      'upkeep-group': 'staging',
      'upkeep-host': 'stage1',
      'upkeep-policy': generationsOf(fleet).stage1.slice(0, 63),
      'upkeep-role-mail': 'true',
      'upkeep-role-web': 'true',
    });
  });

  it('spreads hosts of the same group and roles over different machines, and only those', () => {
    const pg = (host: string) => resources(stack, 'hcloud_server')[host].placement_group_id;
    expect(pg('ns1')).toBe('${hcloud_placement_group.production-dns.id}');
    expect(pg('ns2')).toBe(pg('ns1'));
    expect(pg('web2')).toBe(pg('web1'));
    expect(pg('stage1')).not.toBe(pg('web1'));
    expect(resources(stack, 'hcloud_placement_group')['production-dns']).toMatchObject({ name: 'acme-production-dns', type: 'spread' });
  });

  it('admits ssh only from the admin networks, on each host port in use', () => {
    const base = resources(stack, 'hcloud_firewall').base;
    expect(base.apply_to).toEqual([{ label_selector: 'upkeep-fleet=acme' }]);
    const ssh = base.rule.filter((r: any) => r.protocol === 'tcp');
    expect(ssh.map((r: any) => r.port)).toEqual(['22', '2222']);
    for (const rule of ssh) expect(rule.source_ips).toEqual([...ADMIN_NETWORKS].sort());
  });

  it('opens http and https for web, smtp, submission and imaps for mail, dns over tcp and udp for nameservers', () => {
    const ports = (name: string) => firewallRules(stack, name).map((r) => `${r.protocol}/${r.port}`);
    expect(ports('web')).toEqual(['tcp/80', 'tcp/443']);
    expect(ports('mail')).toEqual(['tcp/25', 'tcp/587', 'tcp/993']);
    expect(ports('dns')).toEqual(['tcp/53', 'udp/53']);
    expect(resources(stack, 'hcloud_firewall').dns.apply_to).toEqual([{ label_selector: 'upkeep-fleet=acme,upkeep-role-dns' }]);
    expect(resources(stack, 'hcloud_firewall').monitor).toBeUndefined();
  });

  it('lets only the backup clients reach the backup host over ssh', () => {
    const firewall = resources(stack, 'hcloud_firewall')['backup-backup1'];
    expect(firewall.apply_to).toEqual([{ label_selector: 'upkeep-fleet=acme,upkeep-host=backup1' }]);
    const sources: string[] = firewall.rule[0].source_ips;
    expect(sources).toContain('198.51.100.20/32');
    expect(sources).toContain('${hcloud_primary_ip.web1.ip_address}/32');
    expect(sources).toContain('${hcloud_server.web1.ipv6_network}');
    // backup1 keeps its own backups elsewhere, so it is no client of itself.
    expect(sources.some((s) => s.includes('.backup1.'))).toBe(false);
    expect(sources).toHaveLength(1 + 2 * 7);
  });

  it('lets only the hosts that watch a monitor read its liveness time, and none without a heartbeat', () => {
    expect(resources(stack, 'hcloud_firewall')['heartbeat-monitor1']).toBeUndefined();
    const watched = stackOf(
      infraFleet((s) => {
        s.hosts.monitor1.monitoring = { heartbeat: { url: { env: 'HB_URL' }, port: 9500 } };
        for (const name of ['web1', 'legacy1']) s.hosts[name].monitoring = { checks: { monitor: { kind: 'monitor-heartbeat', monitor: 'monitor1' } } };
      }),
    );
    const firewall = resources(watched, 'hcloud_firewall')['heartbeat-monitor1'];
    expect(firewall.apply_to).toEqual([{ label_selector: 'upkeep-fleet=acme,upkeep-host=monitor1' }]);
    expect(firewall.rule).toHaveLength(1);
    expect(firewall.rule[0]).toMatchObject({ direction: 'in', protocol: 'tcp', port: '9500' });
    expect([...firewall.rule[0].source_ips].sort()).toEqual(['${hcloud_primary_ip.web1.ip_address}/32', '${hcloud_server.web1.ipv6_network}', '198.51.100.20/32'].sort());
    expect(providerFactProblems(watched)).toEqual([]);
  });

  it('refuses a watcher of a provisioned monitor that has a host name for an address', () => {
    const fleet = infraFleet((s) => {
      s.hosts.monitor1.monitoring = { heartbeat: { url: { env: 'HB_URL' } } };
      s.hosts.legacy1.address = 'legacy1.example.com';
      s.hosts.legacy1.exempt = { backups: 'kept by the customer' };
      s.hosts.legacy1.monitoring = { checks: { monitor: { kind: 'monitor-heartbeat', monitor: 'monitor1' } } };
    });
    expect(() => synthesizeInfra(fleet, generationsOf(fleet), {})).toThrow(
      "hosts.legacy1.address: watches monitor1's heartbeat, whose firewall admits watchers by IP address: give an IP address, not a host name",
    );
  });

  it('lets only the members of a reboot set ask each other whether they are ready, on ports 9470 (the first) and 9471 (the second)', () => {
    const firewall = resources(stack, 'hcloud_firewall')['reboot-set-dns'];
    expect(firewall.apply_to).toEqual([{ label_selector: 'upkeep-fleet=acme,upkeep-host=ns1' }, { label_selector: 'upkeep-fleet=acme,upkeep-host=ns2' }]);
    expect(firewall.rule).toEqual([
      {
        direction: 'in',
        protocol: 'tcp',
        port: '9470-9471',
        source_ips: ['${hcloud_primary_ip.ns1.ip_address}/32', '${hcloud_server.ns1.ipv6_network}', '${hcloud_primary_ip.ns2.ip_address}/32', '${hcloud_server.ns2.ipv6_network}'],
        description: 'readiness, asked by the other members of reboot set dns',
      },
    ]);
  });

  it("lets the members of a reboot set see whether a provisioned member serves on the set's port, which no role opens to anyone", () => {
    // Probed on each member's ssh port, which only the admin networks reach otherwise.
    const onSsh = resources(stackOf(infraFleet((s) => (s.rebootSets = { app: { hosts: ['web1', 'legacy1'] } }))), 'hcloud_firewall')['reboot-set-app'];
    expect(onSsh.rule.map((r: { port: string }) => r.port)).toEqual(['9470-9471', '22']);
    expect(onSsh.rule[1]).toEqual({
      direction: 'in',
      protocol: 'tcp',
      port: '22',
      source_ips: ['198.51.100.20/32', '${hcloud_primary_ip.web1.ip_address}/32', '${hcloud_server.web1.ipv6_network}'],
      description: 'whether it serves, asked by the other members of reboot set app',
    });
    // web1's role "web" opens 443 to anyone already; ns1 and ns2's "dns" opens 53 (the derived set, above).
    const onHttps = resources(stackOf(infraFleet((s) => (s.rebootSets = { app: { hosts: ['web1', 'legacy1'], port: 443 } }))), 'hcloud_firewall')['reboot-set-app'];
    expect(onHttps.rule.map((r: { port: string }) => r.port)).toEqual(['9470-9471']);
  });

  it('admits an existing member of a reboot set by its IP address, and refuses one known only by its name', () => {
    const mixed = stackOf(infraFleet((s) => (s.rebootSets = { app: { hosts: ['web1', 'legacy1'], port: 443 } })));
    const firewall = resources(mixed, 'hcloud_firewall')['reboot-set-app'];
    expect(firewall.apply_to).toEqual([{ label_selector: 'upkeep-fleet=acme,upkeep-host=web1' }]);
    expect(firewall.rule[0].source_ips).toEqual(['198.51.100.20/32', '${hcloud_primary_ip.web1.ip_address}/32', '${hcloud_server.web1.ipv6_network}']);
    let error: unknown;
    try {
      synthesizeInfra(infraFleet((s) => {
        s.rebootSets = { app: { hosts: ['web1', 'legacy1'], port: 443 } };
        s.hosts.legacy1.address = 'legacy1.example.com';
      }), {});
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PolicyError);
    expect((error as PolicyError).issues).toContainEqual({ path: ['hosts', 'legacy1', 'address'], message: 'is in reboot set "app" with provisioned hosts, whose firewall admits the other members by IP address: give an IP address, not a host name' });
  });

  it('gives every server a primary IPv4 that outlives it', () => {
    expect(resources(stack, 'hcloud_primary_ip').mail1).toMatchObject({ type: 'ipv4', assignee_type: 'server', auto_delete: false, location: 'nbg1' });
    expect(resources(stack, 'hcloud_server').mail1.public_net).toEqual([{ ipv4: '${hcloud_primary_ip.mail1.id}', ipv4_enabled: true, ipv6_enabled: true }]);
  });

  it('sets the PTR record of the mail host on its address', () => {
    expect(resources(stack, 'hcloud_rdns')).toEqual({
      mail1: expect.objectContaining({ dns_ptr: 'mail.example.com', ip_address: '${hcloud_primary_ip.mail1.ip_address}', primary_ip_id: '${hcloud_primary_ip.mail1.id}' }),
    });
  });

  it('attaches a protected volume to the backup server', () => {
    expect(resources(stack, 'hcloud_volume').backup1).toMatchObject({ size: 500, location: 'nbg1', format: 'ext4', delete_protection: true });
    expect(resources(stack, 'hcloud_volume_attachment').backup1).toMatchObject({ volume_id: '${hcloud_volume.backup1.id}', server_id: '${hcloud_server.backup1.id}' });
  });

  it('puts every server on the private network, with a subnet per network zone', () => {
    expect(resources(stack, 'hcloud_network').private.ip_range).toBe('10.20.0.0/16');
    const subnets = resources(stack, 'hcloud_network_subnet');
    expect(Object.fromEntries(Object.entries(subnets).map(([k, v]) => [k, [v.network_zone, v.ip_range]]))).toEqual({
      'private-eu-central': ['eu-central', '10.20.0.0/17'],
      'private-us-east': ['us-east', '10.20.128.0/17'],
    });
    expect(resources(stack, 'hcloud_server_network').ns2.subnet_id).toBe('${hcloud_network_subnet.private-us-east.id}');
    expect(Object.keys(resources(stack, 'hcloud_server_network'))).toHaveLength(8);
  });

  it('uploads each operator key once and gives them to every server', () => {
    const keys = resources(stack, 'hcloud_ssh_key');
    expect(Object.values(keys).map((k) => k.public_key).sort()).toEqual([...OPERATOR_KEYS].sort());
    expect(resources(stack, 'hcloud_server').web1.ssh_keys).toEqual(Object.keys(keys).map((k) => `\${hcloud_ssh_key.${k}.id}`));
  });

  it('generates each host key in the stack and hands it to cloud-init', () => {
    expect(resources(stack, 'tls_private_key').web1).toMatchObject({ algorithm: 'ED25519' });
    const userData: string = resources(stack, 'hcloud_server').web1.user_data;
    expect(userData.startsWith('#cloud-config\n${jsonencode(')).toBe(true);
    expect(userData).toContain('"hostname" = "web1"');
    expect(userData).toContain('"ed25519_private" = tls_private_key.web1.private_key_openssh');
    expect(userData).toContain('"ssh_genkeytypes" = []');
    expect(userData).not.toContain('write_files');
  });

  it('moves sshd to the policy port before the first connection', () => {
    expect(resources(stack, 'hcloud_server').monitor1.user_data).toContain('"content" = "Port 2222\\n"');
  });

  it('never rebuilds a running server for a newer bootstrap document or operator key list', () => {
    expect(resources(stack, 'hcloud_server').web1.lifecycle).toEqual({ ignore_changes: ['ssh_keys', 'user_data'] });
  });

  it('outputs address, public host key and port of every provisioned host, and no private key', () => {
    const hosts = stack.output.upkeep_hosts.value;
    expect(Object.keys(hosts).sort()).toEqual(['backup1', 'mail1', 'monitor1', 'ns1', 'ns2', 'stage1', 'web1', 'web2']);
    expect(hosts.monitor1).toEqual({ address: '${hcloud_primary_ip.monitor1.ip_address}', host_key: '${trimspace(tls_private_key.monitor1.public_key_openssh)}', port: 2222 });
    expect(JSON.stringify(stack.output)).not.toMatch(/private_key_(openssh|pem)/);
  });

  it('takes the token from a sensitive variable, never as a value', () => {
    expect(stack.provider.hcloud).toEqual([{ token: '${var.hcloud_token}' }]);
    expect(stack.variable.hcloud_token).toMatchObject({ type: 'string', sensitive: true, nullable: true, default: null });
  });

  it('pins both providers and an engine version that understands the backends', () => {
    expect(stack.terraform.required_providers).toEqual({
      hcloud: { source: 'hetznercloud/hcloud', version: '~> 1.45' },
      tls: { source: 'hashicorp/tls', version: '~> 4.0' },
    });
    expect(stack.terraform.required_version).toBe('>= 1.6.0');
  });
});

describe('the state backend', () => {
  it('keeps local state at the policy path, relative to the project seen from the stack directory', () => {
    expect(stackOf(infraFleet(), { projectDir: '../..' }).terraform.backend).toEqual({ local: { path: '../../state/acme.tfstate' } });
    expect(stackOf(infraFleet((s) => delete s.provisioning.stateBackend)).terraform.backend).toEqual({ local: { path: 'terraform.tfstate' } });
  });

  it('refuses an absolute or escaping local state path', () => {
    const fleet = infraFleet();
    for (const path of ['/var/lib/state.tfstate', '../elsewhere.tfstate', 'C:/state.tfstate']) {
      const withPath = { ...fleet, provisioning: { ...fleet.provisioning!, stateBackend: { local: { path } } } };
      expect(() => synthesizeInfra(withPath, {})).toThrow(/provisioning\.stateBackend\.local\.path: must be a path inside the project/);
    }
  });

  it('configures an S3-compatible bucket without AWS-only checks', () => {
    const fleet = infraFleet((s) => (s.provisioning.stateBackend = { s3: { bucket: 'tf', key: 'acme.tfstate', region: 'fsn1', endpoint: 'https://fsn1.your-objectstorage.com' } }));
    expect(stackOf(fleet).terraform.backend.s3).toEqual({
      bucket: 'tf',
      key: 'acme.tfstate',
      region: 'fsn1',
      endpoints: { s3: 'https://fsn1.your-objectstorage.com' },
      use_path_style: true,
      skip_credentials_validation: true,
      skip_metadata_api_check: true,
      skip_region_validation: true,
      skip_requesting_account_id: true,
      skip_s3_checksum: true,
    });
  });

  it('configures pg without the connection string, which the engine reads from PG_CONN_STR', () => {
    const fleet = infraFleet((s) => (s.provisioning.stateBackend = { pg: { connStr: { env: 'PG_SECRET' }, schemaName: 'acme' } }));
    const stack = stackOf(fleet);
    expect(stack.terraform.backend).toEqual({ pg: { schema_name: 'acme' } });
    expect(JSON.stringify(stack)).not.toContain('PG_SECRET');
  });
});

describe('synthesizeInfra', () => {
  it('returns nothing for a fleet without provisioned hosts', () => {
    const fleet = infraFleet((s) => {
      for (const [name, host] of Object.entries<any>(s.hosts)) {
        delete host.provision;
        host.address = `192.0.2.${Object.keys(s.hosts).indexOf(name) + 1}`;
      }
    });
    expect(synthesizeInfra(fleet, {})).toBeUndefined();
  });

  it('omits the private network when the policy has none', () => {
    const stack = stackOf(infraFleet((s) => delete s.provisioning.privateNetwork));
    expect(stack.resource.hcloud_network).toBeUndefined();
    expect(stack.resource.hcloud_server_network).toBeUndefined();
  });

  it('reports every infrastructure problem of the policy at once, with its path', () => {
    const fleet = infraFleet((s) => {
      s.provisioning.privateNetwork = '8.8.0.0/16';
      s.hosts.legacy1.address = 'legacy1.example.com';
      s.hosts.ns2.provision.location = 'mars1';
    });
    let error: unknown;
    try {
      synthesizeInfra(fleet, {});
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PolicyError);
    expect((error as PolicyError).issues.map((i) => i.path.join('.'))).toEqual(['hosts.ns2.provision.location', 'provisioning.privateNetwork', 'hosts.legacy1.address']);
  });

  it('refuses a host name that cannot be a hostname and a Terraform name, even past the policy checks', () => {
    const fleet = infraFleet();
    const renamed = { ...fleet, hosts: fleet.hosts.map((h) => (h.name === 'web1' ? { ...h, name: 'web.1' } : h)) };
    expect(() => synthesizeInfra(renamed, {})).toThrow(/hosts\."web\.1": a provisioned host name becomes its hostname/);
  });
});
