// The Hetzner Cloud provider (hetznercloud/hcloud). No prebuilt @cdktf/provider-hcloud exists in
// the npm registry and `cdktf get` needs the Terraform registry, so these bindings are written by
// hand in the shape a generated binding has: camelCase props, snake_case attributes, getters that
// return tokens. Facts come from the provider's docs and Go source.

import type { Construct } from 'constructs';
import { TerraformProvider, stringToTerraform, type TerraformMetaArguments, type TerraformProviderGeneratorMetadata, type TerraformResourceConfig } from 'cdktf';

/** Provider registry address. */
export const HCLOUD_PROVIDER_SOURCE = 'hetznercloud/hcloud';

/**
 * Any 1.x from 1.45 on: the provider's docs pin `~> 1.45`, and `location` (which replaces the
 * deprecated `datacenter` we never emit) works across that range.
 */
export const HCLOUD_PROVIDER_VERSION = '~> 1.45';

/** Ties every hcloud resource to the provider, so cdktf checks the provider is in the stack. */
export const HCLOUD_GENERATOR: TerraformProviderGeneratorMetadata = {
  providerName: 'hcloud',
  providerVersionConstraint: HCLOUD_PROVIDER_VERSION,
};

export interface HcloudProviderConfig {
  /** API token. Sensitive: pass a variable reference, never a value. @default the HCLOUD_TOKEN environment variable */
  readonly token?: string;
  /** @default "https://api.hetzner.cloud/v1" */
  readonly endpoint?: string;
  /** Duration string between action polls. @default "500ms" */
  readonly pollInterval?: string;
  /** @default "exponential" */
  readonly pollFunction?: 'constant' | 'exponential';
  readonly alias?: string;
}

export class HcloudProvider extends TerraformProvider {
  static readonly tfResourceType = 'hcloud';
  private readonly config: HcloudProviderConfig;
  private aliasName?: string;

  constructor(scope: Construct, id: string, config: HcloudProviderConfig = {}) {
    super(scope, id, {
      terraformResourceType: HcloudProvider.tfResourceType,
      terraformGeneratorMetadata: HCLOUD_GENERATOR,
      terraformProviderSource: HCLOUD_PROVIDER_SOURCE,
    });
    this.config = config;
    this.aliasName = config.alias;
  }

  // The base class ignores aliases; a generated provider stores it, so `provider.fqn` and the
  // resources that use an aliased provider name it ("hcloud.<alias>").
  override get alias(): string | undefined {
    return this.aliasName;
  }
  override set alias(value: string | undefined) {
    this.aliasName = value;
  }

  protected override synthesizeAttributes(): Record<string, unknown> {
    return {
      token: stringToTerraform(this.config.token),
      endpoint: stringToTerraform(this.config.endpoint),
      poll_interval: stringToTerraform(this.config.pollInterval),
      poll_function: stringToTerraform(this.config.pollFunction),
      alias: stringToTerraform(this.aliasName),
    };
  }
}

/** The meta-arguments (depends_on, lifecycle, provider, ...) of a binding's config, for its base class. */
export function metaArguments(config: TerraformMetaArguments): Omit<TerraformResourceConfig, 'terraformResourceType'> {
  const { dependsOn, count, provider, lifecycle, forEach, provisioners, connection } = config;
  return { dependsOn, count, provider, lifecycle, forEach, provisioners, connection };
}
