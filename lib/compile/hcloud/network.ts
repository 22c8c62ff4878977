// hcloud_network, hcloud_network_subnet and hcloud_server_network: a private network between the
// fleet's servers. Every subnet argument forces a new subnet; so do server_id, network_id,
// subnet_id and ip of a server's attachment.

import type { Construct } from 'constructs';
import { TerraformResource, booleanToTerraform, hashMapper, listMapper, numberToTerraform, stringToTerraform, type TerraformMetaArguments } from 'cdktf';
import { HCLOUD_GENERATOR, metaArguments } from './provider.ts';

export interface NetworkConfig extends TerraformMetaArguments {
  readonly name: string;
  /** An RFC 1918 CIDR, e.g. "10.0.0.0/16". */
  readonly ipRange: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly deleteProtection?: boolean;
  readonly exposeRoutesToVswitch?: boolean;
}

export class Network extends TerraformResource {
  static readonly tfResourceType = 'hcloud_network';
  private readonly config: NetworkConfig;

  constructor(scope: Construct, id: string, config: NetworkConfig) {
    super(scope, id, { terraformResourceType: Network.tfResourceType, terraformGeneratorMetadata: HCLOUD_GENERATOR, ...metaArguments(config) });
    this.config = config;
  }

  get id(): string {
    return this.getStringAttribute('id');
  }

  protected override synthesizeAttributes(): Record<string, unknown> {
    return {
      name: stringToTerraform(this.config.name),
      ip_range: stringToTerraform(this.config.ipRange),
      labels: hashMapper(stringToTerraform)(this.config.labels),
      delete_protection: booleanToTerraform(this.config.deleteProtection),
      expose_routes_to_vswitch: booleanToTerraform(this.config.exposeRoutesToVswitch),
    };
  }
}

export type NetworkZone = 'eu-central' | 'us-east' | 'us-west' | 'ap-southeast';

export interface NetworkSubnetConfig extends TerraformMetaArguments {
  readonly networkId: number;
  readonly type: 'cloud' | 'server' | 'vswitch';
  readonly networkZone: NetworkZone;
  /** Inside the network's range. */
  readonly ipRange: string;
  /** Only for type "vswitch". */
  readonly vswitchId?: number;
}

export class NetworkSubnet extends TerraformResource {
  static readonly tfResourceType = 'hcloud_network_subnet';
  private readonly config: NetworkSubnetConfig;

  constructor(scope: Construct, id: string, config: NetworkSubnetConfig) {
    super(scope, id, { terraformResourceType: NetworkSubnet.tfResourceType, terraformGeneratorMetadata: HCLOUD_GENERATOR, ...metaArguments(config) });
    this.config = config;
  }

  /** "<network-id>-<ip_range>": a string, which is what server attachments take. */
  get id(): string {
    return this.getStringAttribute('id');
  }

  protected override synthesizeAttributes(): Record<string, unknown> {
    return {
      network_id: numberToTerraform(this.config.networkId),
      type: stringToTerraform(this.config.type),
      network_zone: stringToTerraform(this.config.networkZone),
      ip_range: stringToTerraform(this.config.ipRange),
      vswitch_id: numberToTerraform(this.config.vswitchId),
    };
  }
}

/** Exactly one of subnetId (preferred) and networkId. */
export type ServerNetworkTarget = { readonly subnetId: string; readonly networkId?: never } | { readonly networkId: number; readonly subnetId?: never };

export type ServerNetworkConfig = TerraformMetaArguments &
  ServerNetworkTarget & {
    readonly serverId: number;
    /** @default assigned by Hetzner */
    readonly ip?: string;
    /** Set to [] to avoid churn. */
    readonly aliasIps?: readonly string[];
  };

export class ServerNetwork extends TerraformResource {
  static readonly tfResourceType = 'hcloud_server_network';
  private readonly config: ServerNetworkConfig;

  constructor(scope: Construct, id: string, config: ServerNetworkConfig) {
    super(scope, id, { terraformResourceType: ServerNetwork.tfResourceType, terraformGeneratorMetadata: HCLOUD_GENERATOR, ...metaArguments(config) });
    this.config = config;
  }

  get id(): string {
    return this.getStringAttribute('id');
  }
  /** The server's address in the network. */
  get ip(): string {
    return this.getStringAttribute('ip');
  }
  get macAddress(): string {
    return this.getStringAttribute('mac_address');
  }

  protected override synthesizeAttributes(): Record<string, unknown> {
    return {
      server_id: numberToTerraform(this.config.serverId),
      subnet_id: stringToTerraform(this.config.subnetId),
      network_id: numberToTerraform(this.config.networkId),
      ip: stringToTerraform(this.config.ip),
      alias_ips: listMapper(stringToTerraform, false)(this.config.aliasIps),
    };
  }
}
