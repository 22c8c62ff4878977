// hcloud_primary_ip. An address that exists apart from its server: with auto_delete off it
// survives a server's replacement, so DNS records and a mail server's PTR stay valid.

import type { Construct } from 'constructs';
import { TerraformResource, booleanToTerraform, hashMapper, numberToTerraform, stringToTerraform, type TerraformMetaArguments } from 'cdktf';
import { HCLOUD_GENERATOR, metaArguments } from './provider.ts';

/** Exactly one of location and assigneeId. */
export type PrimaryIpPlacement = { readonly location: string; readonly assigneeId?: never } | { readonly assigneeId: number; readonly location?: never };

export type PrimaryIpConfig = TerraformMetaArguments &
  PrimaryIpPlacement & {
    /** Changing it replaces the address. */
    readonly type: 'ipv4' | 'ipv6';
    readonly assigneeType: 'server';
    /** Delete the address with its server; prefer false. */
    readonly autoDelete: boolean;
    readonly name?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly deleteProtection?: boolean;
  };

export class PrimaryIp extends TerraformResource {
  static readonly tfResourceType = 'hcloud_primary_ip';
  private readonly config: PrimaryIpConfig;

  constructor(scope: Construct, id: string, config: PrimaryIpConfig) {
    super(scope, id, { terraformResourceType: PrimaryIp.tfResourceType, terraformGeneratorMetadata: HCLOUD_GENERATOR, ...metaArguments(config) });
    this.config = config;
  }

  get id(): string {
    return this.getStringAttribute('id');
  }
  get ipAddress(): string {
    return this.getStringAttribute('ip_address');
  }

  protected override synthesizeAttributes(): Record<string, unknown> {
    const c = this.config;
    return {
      type: stringToTerraform(c.type),
      assignee_type: stringToTerraform(c.assigneeType),
      auto_delete: booleanToTerraform(c.autoDelete),
      name: stringToTerraform(c.name),
      location: stringToTerraform(c.location),
      assignee_id: numberToTerraform(c.assigneeId),
      labels: hashMapper(stringToTerraform)(c.labels),
      delete_protection: booleanToTerraform(c.deleteProtection),
    };
  }
}
