// hcloud_ssh_key. Hetzner rejects a second key with the same fingerprint in one project.

import type { Construct } from 'constructs';
import { TerraformResource, hashMapper, stringToTerraform, type TerraformMetaArguments } from 'cdktf';
import { HCLOUD_GENERATOR, metaArguments } from './provider.ts';

export interface SshKeyConfig extends TerraformMetaArguments {
  readonly name: string;
  /** "ssh-ed25519 AAAA... comment". Changing it replaces the key. */
  readonly publicKey: string;
  readonly labels?: Readonly<Record<string, string>>;
}

export class SshKey extends TerraformResource {
  static readonly tfResourceType = 'hcloud_ssh_key';
  private readonly config: SshKeyConfig;

  constructor(scope: Construct, id: string, config: SshKeyConfig) {
    super(scope, id, { terraformResourceType: SshKey.tfResourceType, terraformGeneratorMetadata: HCLOUD_GENERATOR, ...metaArguments(config) });
    this.config = config;
  }

  get id(): string {
    return this.getStringAttribute('id');
  }
  get fingerprint(): string {
    return this.getStringAttribute('fingerprint');
  }

  protected override synthesizeAttributes(): Record<string, unknown> {
    return {
      name: stringToTerraform(this.config.name),
      public_key: stringToTerraform(this.config.publicKey),
      labels: hashMapper(stringToTerraform)(this.config.labels),
    };
  }
}
