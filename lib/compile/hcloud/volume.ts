// hcloud_volume and hcloud_volume_attachment. A volume outlives its server: the backup server's
// repositories live on one, so replacing that server does not lose the backups.

import type { Construct } from 'constructs';
import { TerraformResource, booleanToTerraform, hashMapper, numberToTerraform, stringToTerraform, type TerraformMetaArguments } from 'cdktf';
import { HCLOUD_GENERATOR, metaArguments } from './provider.ts';

export interface VolumeConfig extends TerraformMetaArguments {
  readonly name: string;
  /** GB; grows in place (Hetzner cannot shrink a volume). */
  readonly size: number;
  /** Changing it replaces the volume. Not together with serverId. */
  readonly location?: string;
  readonly serverId?: number;
  /** Needs serverId. */
  readonly automount?: boolean;
  readonly format?: 'xfs' | 'ext4';
  readonly labels?: Readonly<Record<string, string>>;
  readonly deleteProtection?: boolean;
}

export class Volume extends TerraformResource {
  static readonly tfResourceType = 'hcloud_volume';
  private readonly config: VolumeConfig;

  constructor(scope: Construct, id: string, config: VolumeConfig) {
    super(scope, id, { terraformResourceType: Volume.tfResourceType, terraformGeneratorMetadata: HCLOUD_GENERATOR, ...metaArguments(config) });
    this.config = config;
  }

  get id(): string {
    return this.getStringAttribute('id');
  }
  /** e.g. "/dev/disk/by-id/scsi-0HC_Volume_123". */
  get linuxDevice(): string {
    return this.getStringAttribute('linux_device');
  }

  protected override synthesizeAttributes(): Record<string, unknown> {
    const c = this.config;
    return {
      name: stringToTerraform(c.name),
      size: numberToTerraform(c.size),
      location: stringToTerraform(c.location),
      server_id: numberToTerraform(c.serverId),
      automount: booleanToTerraform(c.automount),
      format: stringToTerraform(c.format),
      labels: hashMapper(stringToTerraform)(c.labels),
      delete_protection: booleanToTerraform(c.deleteProtection),
    };
  }
}

export interface VolumeAttachmentConfig extends TerraformMetaArguments {
  /** Changing it replaces the attachment. */
  readonly volumeId: number;
  /** Changing it replaces the attachment. */
  readonly serverId: number;
  readonly automount?: boolean;
}

export class VolumeAttachment extends TerraformResource {
  static readonly tfResourceType = 'hcloud_volume_attachment';
  private readonly config: VolumeAttachmentConfig;

  constructor(scope: Construct, id: string, config: VolumeAttachmentConfig) {
    super(scope, id, { terraformResourceType: VolumeAttachment.tfResourceType, terraformGeneratorMetadata: HCLOUD_GENERATOR, ...metaArguments(config) });
    this.config = config;
  }

  get id(): string {
    return this.getStringAttribute('id');
  }

  protected override synthesizeAttributes(): Record<string, unknown> {
    return {
      volume_id: numberToTerraform(this.config.volumeId),
      server_id: numberToTerraform(this.config.serverId),
      automount: booleanToTerraform(this.config.automount),
    };
  }
}
