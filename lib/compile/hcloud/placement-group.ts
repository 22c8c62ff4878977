// hcloud_placement_group. A "spread" group puts each member on a different physical host.

import type { Construct } from 'constructs';
import { TerraformResource, hashMapper, stringToTerraform, type TerraformMetaArguments } from 'cdktf';
import { HCLOUD_GENERATOR, metaArguments } from './provider.ts';

export interface PlacementGroupConfig extends TerraformMetaArguments {
  readonly name: string;
  /** The only type Hetzner offers. */
  readonly type: 'spread';
  readonly labels?: Readonly<Record<string, string>>;
}

export class PlacementGroup extends TerraformResource {
  static readonly tfResourceType = 'hcloud_placement_group';
  private readonly config: PlacementGroupConfig;

  constructor(scope: Construct, id: string, config: PlacementGroupConfig) {
    super(scope, id, { terraformResourceType: PlacementGroup.tfResourceType, terraformGeneratorMetadata: HCLOUD_GENERATOR, ...metaArguments(config) });
    this.config = config;
  }

  get id(): string {
    return this.getStringAttribute('id');
  }

  protected override synthesizeAttributes(): Record<string, unknown> {
    return {
      name: stringToTerraform(this.config.name),
      type: stringToTerraform(this.config.type),
      labels: hashMapper(stringToTerraform)(this.config.labels),
    };
  }
}
