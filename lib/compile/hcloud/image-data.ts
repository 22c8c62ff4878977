// data "hcloud_image": looks an image up. Feeding its id into a server would replace the server
// whenever Hetzner publishes a newer build, so servers take the image name instead.

import type { Construct } from 'constructs';
import { TerraformDataSource, booleanToTerraform, listMapper, numberToTerraform, stringToTerraform, type TerraformMetaArguments } from 'cdktf';
import { HCLOUD_GENERATOR, metaArguments } from './provider.ts';

export interface DataHcloudImageConfig extends TerraformMetaArguments {
  readonly id?: number;
  readonly name?: string;
  /** Label selector, e.g. "os=debian". */
  readonly withSelector?: string;
  readonly mostRecent?: boolean;
  readonly withStatus?: readonly ('available' | 'creating' | 'unavailable')[];
  readonly withArchitecture?: 'x86' | 'arm';
  readonly includeDeprecated?: boolean;
}

export class DataHcloudImage extends TerraformDataSource {
  static readonly tfResourceType = 'hcloud_image';
  private readonly config: DataHcloudImageConfig;

  constructor(scope: Construct, id: string, config: DataHcloudImageConfig = {}) {
    super(scope, id, { terraformResourceType: DataHcloudImage.tfResourceType, terraformGeneratorMetadata: HCLOUD_GENERATOR, ...metaArguments(config) });
    this.config = config;
  }

  get id(): number {
    return this.getNumberAttribute('id');
  }
  get osFlavor(): string {
    return this.getStringAttribute('os_flavor');
  }
  get osVersion(): string {
    return this.getStringAttribute('os_version');
  }
  get architecture(): string {
    return this.getStringAttribute('architecture');
  }
  get deprecated(): string {
    return this.getStringAttribute('deprecated');
  }

  protected override synthesizeAttributes(): Record<string, unknown> {
    const c = this.config;
    return {
      id: numberToTerraform(c.id),
      name: stringToTerraform(c.name),
      with_selector: stringToTerraform(c.withSelector),
      most_recent: booleanToTerraform(c.mostRecent),
      with_status: listMapper(stringToTerraform, false)(c.withStatus),
      with_architecture: stringToTerraform(c.withArchitecture),
      include_deprecated: booleanToTerraform(c.includeDeprecated),
    };
  }
}
