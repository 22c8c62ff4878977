// Where Terraform keeps the state of the fleet: a local file relative to the project (never an
// absolute path: cdktf's default is one, which would make the plan differ per machine), an
// S3-compatible bucket, or PostgreSQL. Credentials are never part of the stack: S3 reads the
// usual AWS_* variables, pg reads PG_CONN_STR, both set by the applier.

import { posix } from 'node:path';
import type { Construct } from 'constructs';
import { LocalBackend, S3Backend, TerraformBackend, type TerraformRemoteState } from 'cdktf';
import type { StateBackend } from '../policy/model.ts';
import type { PolicyIssue } from '../policy/errors.ts';

/** The pg backend without conn_str, which Terraform then takes from PG_CONN_STR. */
class PgBackendWithoutSecret extends TerraformBackend {
  private readonly schemaName?: string;

  constructor(scope: Construct, schemaName?: string) {
    super(scope, 'backend', 'pg');
    this.schemaName = schemaName;
  }

  protected override synthesizeAttributes(): Record<string, unknown> {
    return { schema_name: this.schemaName };
  }

  getRemoteStateDataSource(): TerraformRemoteState {
    throw new Error('an upkeep stack is never read as remote state of another stack');
  }
}

/** The default state file, relative to the project. */
export const DEFAULT_STATE_PATH = 'terraform.tfstate';

/** Problems with the backend spec, with their policy paths. */
export function stateBackendIssues(backend: StateBackend | undefined): PolicyIssue[] {
  if (!backend || !('local' in backend)) return [];
  const path = backend.local.path ?? DEFAULT_STATE_PATH;
  const normal = posix.normalize(path);
  if (posix.isAbsolute(path) || /^[A-Za-z]:/.test(path) || normal === '..' || normal.startsWith('../')) {
    return [{ path: ['provisioning', 'stateBackend', 'local', 'path'], message: `must be a path inside the project, got ${JSON.stringify(path)}` }];
  }
  return [];
}

/**
 * Adds the backend to the stack. `projectDir` is the project directory seen from the directory the
 * stack is written to, so a local state file lands in the project whatever the output directory.
 */
export function addStateBackend(scope: Construct, backend: StateBackend | undefined, projectDir: string): void {
  if (!backend || 'local' in backend) {
    new LocalBackend(scope, { path: posix.join(projectDir, backend?.local.path ?? DEFAULT_STATE_PATH) });
    return;
  }
  if ('s3' in backend) {
    const { bucket, key, region, endpoint } = backend.s3;
    new S3Backend(scope, {
      bucket,
      key,
      region,
      // S3-compatible stores (Hetzner Object Storage, MinIO, Ceph) are not AWS: skip the checks
      // that only AWS can answer and address buckets by path.
      ...(endpoint && {
        endpoints: { s3: endpoint },
        usePathStyle: true,
        skipCredentialsValidation: true,
        skipRegionValidation: true,
        skipRequestingAccountId: true,
        skipMetadataApiCheck: true,
        skipS3Checksum: true,
      }),
    });
    return;
  }
  new PgBackendWithoutSecret(scope, backend.pg.schemaName);
}
