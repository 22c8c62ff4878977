// hcloud_firewall and hcloud_firewall_attachment. A firewall with an `apply_to` label selector
// covers a server from the moment it is created with matching labels, without the server having
// to reference the firewall (which would create cycles when rules name other servers' addresses).

import type { Construct } from 'constructs';
import { TerraformResource, hashMapper, listMapper, numberToTerraform, stringToTerraform, type TerraformMetaArguments } from 'cdktf';
import { HCLOUD_GENERATOR, metaArguments } from './provider.ts';

export type FirewallProtocol = 'tcp' | 'udp' | 'icmp' | 'gre' | 'esp';

export interface FirewallRule {
  readonly direction: 'in' | 'out';
  readonly protocol: FirewallProtocol;
  /** Required for tcp and udp: "22", "80-85" or "any". */
  readonly port?: string;
  /** CIDRs, for direction "in". */
  readonly sourceIps?: readonly string[];
  /** CIDRs, for direction "out". */
  readonly destinationIps?: readonly string[];
  readonly description?: string;
}

/** One target per block: a label selector or a server id. */
export type FirewallApplyTo = { readonly labelSelector: string } | { readonly server: number };

export interface FirewallConfig extends TerraformMetaArguments {
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly rule?: readonly FirewallRule[];
  readonly applyTo?: readonly FirewallApplyTo[];
}

function ruleToTerraform(rule: FirewallRule): Record<string, unknown> {
  return {
    direction: stringToTerraform(rule.direction),
    protocol: stringToTerraform(rule.protocol),
    port: stringToTerraform(rule.port),
    source_ips: listMapper(stringToTerraform, false)(rule.sourceIps),
    destination_ips: listMapper(stringToTerraform, false)(rule.destinationIps),
    description: stringToTerraform(rule.description),
  };
}

function applyToToTerraform(target: FirewallApplyTo): Record<string, unknown> {
  return 'labelSelector' in target ? { label_selector: stringToTerraform(target.labelSelector) } : { server: numberToTerraform(target.server) };
}

export class Firewall extends TerraformResource {
  static readonly tfResourceType = 'hcloud_firewall';
  private readonly config: FirewallConfig;

  constructor(scope: Construct, id: string, config: FirewallConfig) {
    super(scope, id, { terraformResourceType: Firewall.tfResourceType, terraformGeneratorMetadata: HCLOUD_GENERATOR, ...metaArguments(config) });
    this.config = config;
  }

  get id(): string {
    return this.getStringAttribute('id');
  }

  protected override synthesizeAttributes(): Record<string, unknown> {
    return {
      name: stringToTerraform(this.config.name),
      labels: hashMapper(stringToTerraform)(this.config.labels),
      rule: listMapper(ruleToTerraform, true)(this.config.rule),
      apply_to: listMapper(applyToToTerraform, true)(this.config.applyTo),
    };
  }
}

export interface FirewallAttachmentConfig extends TerraformMetaArguments {
  /** Changing it replaces the attachment. */
  readonly firewallId: number;
  /** At least one of serverIds and labelSelectors must be non-empty. */
  readonly serverIds?: readonly number[];
  readonly labelSelectors?: readonly string[];
}

/** At most one attachment per firewall. */
export class FirewallAttachment extends TerraformResource {
  static readonly tfResourceType = 'hcloud_firewall_attachment';
  private readonly config: FirewallAttachmentConfig;

  constructor(scope: Construct, id: string, config: FirewallAttachmentConfig) {
    super(scope, id, { terraformResourceType: FirewallAttachment.tfResourceType, terraformGeneratorMetadata: HCLOUD_GENERATOR, ...metaArguments(config) });
    this.config = config;
  }

  get id(): string {
    return this.getStringAttribute('id');
  }

  protected override synthesizeAttributes(): Record<string, unknown> {
    return {
      firewall_id: numberToTerraform(this.config.firewallId),
      server_ids: listMapper(numberToTerraform, false)(this.config.serverIds),
      label_selectors: listMapper(stringToTerraform, false)(this.config.labelSelectors),
    };
  }
}
