// hcloud_rdns: the PTR record of an address. Mail servers need one that matches their name.

import type { Construct } from 'constructs';
import { TerraformResource, numberToTerraform, stringToTerraform, type TerraformMetaArguments } from 'cdktf';
import { HCLOUD_GENERATOR, metaArguments } from './provider.ts';

/** Exactly one owner of the address; changing it replaces the record. */
export type RdnsOwner =
  | { readonly serverId: number }
  | { readonly primaryIpId: number }
  | { readonly floatingIpId: number }
  | { readonly loadBalancerId: number };

export type RdnsConfig = TerraformMetaArguments &
  RdnsOwner & {
    /** Changing it replaces the record. */
    readonly ipAddress: string;
    readonly dnsPtr: string;
  };

export class Rdns extends TerraformResource {
  static readonly tfResourceType = 'hcloud_rdns';
  private readonly config: RdnsConfig;

  constructor(scope: Construct, id: string, config: RdnsConfig) {
    super(scope, id, { terraformResourceType: Rdns.tfResourceType, terraformGeneratorMetadata: HCLOUD_GENERATOR, ...metaArguments(config) });
    this.config = config;
  }

  get id(): string {
    return this.getStringAttribute('id');
  }

  protected override synthesizeAttributes(): Record<string, unknown> {
    const c = this.config;
    return {
      ip_address: stringToTerraform(c.ipAddress),
      dns_ptr: stringToTerraform(c.dnsPtr),
      server_id: numberToTerraform('serverId' in c ? c.serverId : undefined),
      primary_ip_id: numberToTerraform('primaryIpId' in c ? c.primaryIpId : undefined),
      floating_ip_id: numberToTerraform('floatingIpId' in c ? c.floatingIpId : undefined),
      load_balancer_id: numberToTerraform('loadBalancerId' in c ? c.loadBalancerId : undefined),
    };
  }
}
