// hcloud_server. Changing image, location, user_data or ssh_keys replaces the server (and loses
// its disk); server_type resizes in place. `datacenter` is deprecated and deliberately absent.

import type { Construct } from 'constructs';
import { TerraformResource, booleanToTerraform, hashMapper, listMapper, numberToTerraform, stringToTerraform, type TerraformMetaArguments } from 'cdktf';
import { HCLOUD_GENERATOR, metaArguments } from './provider.ts';

export interface ServerPublicNet {
  /** @default true */
  readonly ipv4Enabled?: boolean;
  /** @default true */
  readonly ipv6Enabled?: boolean;
  /** Id of a primary IPv4 to assign. */
  readonly ipv4?: number;
  /** Id of a primary IPv6 to assign. */
  readonly ipv6?: number;
}

export interface ServerNetworkBlock {
  /** Preferred over networkId. */
  readonly subnetId?: string;
  readonly networkId?: number;
  readonly ip?: string;
  /** Set to [] to avoid churn. */
  readonly aliasIps?: readonly string[];
}

export interface ServerConfig extends TerraformMetaArguments {
  /** RFC 1123 hostname, unique in the project. */
  readonly name: string;
  /** e.g. "cx22". */
  readonly serverType: string;
  /** Name or id, e.g. "debian-12". Changing it replaces the server. */
  readonly image?: string;
  /** nbg1, fsn1, hel1, ash, hil. Changing it replaces the server. */
  readonly location?: string;
  /** cloud-init; the state keeps only a hash. Changing it replaces the server. */
  readonly userData?: string;
  /** Ids or names of ssh keys. Changing them replaces the server. */
  readonly sshKeys?: readonly string[];
  readonly publicNet?: readonly ServerPublicNet[];
  readonly network?: readonly ServerNetworkBlock[];
  readonly labels?: Readonly<Record<string, string>>;
  readonly firewallIds?: readonly number[];
  readonly placementGroupId?: number;
  readonly backups?: boolean;
  readonly keepDisk?: boolean;
  readonly allowDeprecatedImages?: boolean;
  /** Must equal rebuildProtection. */
  readonly deleteProtection?: boolean;
  readonly rebuildProtection?: boolean;
  readonly shutdownBeforeDeletion?: boolean;
  readonly iso?: string;
  readonly rescue?: 'linux64' | 'linux32';
}

function publicNetToTerraform(block: ServerPublicNet): Record<string, unknown> {
  return {
    ipv4_enabled: booleanToTerraform(block.ipv4Enabled),
    ipv6_enabled: booleanToTerraform(block.ipv6Enabled),
    ipv4: numberToTerraform(block.ipv4),
    ipv6: numberToTerraform(block.ipv6),
  };
}

function networkToTerraform(block: ServerNetworkBlock): Record<string, unknown> {
  return {
    subnet_id: stringToTerraform(block.subnetId),
    network_id: numberToTerraform(block.networkId),
    ip: stringToTerraform(block.ip),
    alias_ips: listMapper(stringToTerraform, false)(block.aliasIps),
  };
}

export class Server extends TerraformResource {
  static readonly tfResourceType = 'hcloud_server';
  private readonly config: ServerConfig;

  constructor(scope: Construct, id: string, config: ServerConfig) {
    super(scope, id, { terraformResourceType: Server.tfResourceType, terraformGeneratorMetadata: HCLOUD_GENERATOR, ...metaArguments(config) });
    this.config = config;
  }

  /** The server id; a string in Terraform, use Token.asNumber where a number is expected. */
  get id(): string {
    return this.getStringAttribute('id');
  }
  get ipv4Address(): string {
    return this.getStringAttribute('ipv4_address');
  }
  get ipv6Address(): string {
    return this.getStringAttribute('ipv6_address');
  }
  get ipv6Network(): string {
    return this.getStringAttribute('ipv6_network');
  }
  get status(): string {
    return this.getStringAttribute('status');
  }
  get primaryDiskSize(): number {
    return this.getNumberAttribute('primary_disk_size');
  }
  get location(): string {
    return this.getStringAttribute('location');
  }

  protected override synthesizeAttributes(): Record<string, unknown> {
    const c = this.config;
    return {
      name: stringToTerraform(c.name),
      server_type: stringToTerraform(c.serverType),
      image: stringToTerraform(c.image),
      location: stringToTerraform(c.location),
      user_data: stringToTerraform(c.userData),
      ssh_keys: listMapper(stringToTerraform, false)(c.sshKeys),
      public_net: listMapper(publicNetToTerraform, true)(c.publicNet),
      network: listMapper(networkToTerraform, true)(c.network),
      labels: hashMapper(stringToTerraform)(c.labels),
      firewall_ids: listMapper(numberToTerraform, false)(c.firewallIds),
      placement_group_id: numberToTerraform(c.placementGroupId),
      backups: booleanToTerraform(c.backups),
      keep_disk: booleanToTerraform(c.keepDisk),
      allow_deprecated_images: booleanToTerraform(c.allowDeprecatedImages),
      delete_protection: booleanToTerraform(c.deleteProtection),
      rebuild_protection: booleanToTerraform(c.rebuildProtection),
      shutdown_before_deletion: booleanToTerraform(c.shutdownBeforeDeletion),
      iso: stringToTerraform(c.iso),
      rescue: stringToTerraform(c.rescue),
    };
  }
}
