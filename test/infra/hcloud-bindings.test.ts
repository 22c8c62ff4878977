import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, TerraformOutput, TerraformStack, Token } from 'cdktf';
import { afterAll, describe, expect, it } from 'vitest';
import { DataHcloudImage, Firewall, FirewallAttachment, HcloudProvider, Rdns, Server, SshKey } from '../../lib/compile/hcloud/index.ts';
import { providerFactProblems } from './provider-facts.ts';

const outdir = mkdtempSync(join(tmpdir(), 'upkeep-bindings-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

function newStack(): TerraformStack {
  return new TerraformStack(new App({ outdir }), 'bindings');
}

describe('the typed hcloud bindings', () => {
  it('write camelCase props as the provider snake_case arguments, leaving out what is unset', () => {
    const stack = newStack();
    new HcloudProvider(stack, 'hcloud', { pollInterval: '1s', pollFunction: 'constant' });
    new Server(stack, 'web', { name: 'web', serverType: 'cx22', allowDeprecatedImages: true, publicNet: [{ ipv4Enabled: false, ipv6Enabled: true }], network: [{ networkId: 7, aliasIps: [] }] });
    const tf = stack.toTerraform();
    expect(tf.provider.hcloud).toEqual([{ poll_interval: '1s', poll_function: 'constant' }]);
    expect(tf.resource.hcloud_server.web).toMatchObject({
      name: 'web',
      server_type: 'cx22',
      allow_deprecated_images: true,
      public_net: [{ ipv4_enabled: false, ipv6_enabled: true }],
      network: [{ network_id: 7, alias_ips: [] }],
    });
    expect(Object.keys(tf.resource.hcloud_server.web).sort()).toEqual(['//', 'allow_deprecated_images', 'name', 'network', 'public_net', 'server_type']);
    expect(providerFactProblems(tf)).toEqual([]);
  });

  it('return references from attribute getters, numbers included', () => {
    const stack = newStack();
    new HcloudProvider(stack, 'hcloud');
    const server = new Server(stack, 'web', { name: 'web', serverType: 'cx22' });
    const image = new DataHcloudImage(stack, 'debian', { withSelector: 'os=debian', mostRecent: true, withArchitecture: 'x86' });
    new Rdns(stack, 'ptr', { serverId: Token.asNumber(server.id), ipAddress: server.ipv4Address, dnsPtr: 'web.example.com' });
    new TerraformOutput(stack, 'image', { value: image.id });
    const tf = stack.toTerraform();
    expect(tf.resource.hcloud_rdns.ptr).toMatchObject({ server_id: '${hcloud_server.web.id}', ip_address: '${hcloud_server.web.ipv4_address}' });
    expect(tf.data.hcloud_image.debian).toMatchObject({ with_selector: 'os=debian', most_recent: true, with_architecture: 'x86' });
    expect(tf.output.image.value).toBe('${data.hcloud_image.debian.id}');
  });

  it('write firewall rules and targets as blocks', () => {
    const stack = newStack();
    new HcloudProvider(stack, 'hcloud');
    const fw = new Firewall(stack, 'fw', { name: 'fw', rule: [{ direction: 'out', protocol: 'udp', port: '123', destinationIps: ['0.0.0.0/0'] }], applyTo: [{ server: 42 }] });
    new FirewallAttachment(stack, 'fwa', { firewallId: Token.asNumber(fw.id), labelSelectors: ['role=web'] });
    const tf = stack.toTerraform();
    expect(tf.resource.hcloud_firewall.fw).toMatchObject({ rule: [{ direction: 'out', protocol: 'udp', port: '123', destination_ips: ['0.0.0.0/0'] }], apply_to: [{ server: 42 }] });
    expect(tf.resource.hcloud_firewall_attachment.fwa).toMatchObject({ firewall_id: '${hcloud_firewall.fw.id}', label_selectors: ['role=web'] });
    expect(providerFactProblems(tf)).toEqual([]);
  });

  it('name an aliased provider in the resources that use it', () => {
    const stack = newStack();
    new HcloudProvider(stack, 'hcloud');
    const other = new HcloudProvider(stack, 'other', { alias: 'other_project' });
    new SshKey(stack, 'key', { name: 'k', publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA k', provider: other });
    const tf = stack.toTerraform();
    expect(tf.provider.hcloud).toEqual([{}, { alias: 'other_project' }]);
    expect(tf.resource.hcloud_ssh_key.key.provider).toBe('hcloud.other_project');
  });

  it('declare the provider source and version constraint', () => {
    const stack = newStack();
    new HcloudProvider(stack, 'hcloud');
    expect(stack.toTerraform().terraform.required_providers.hcloud).toEqual({ source: 'hetznercloud/hcloud', version: '~> 1.45' });
  });
});
