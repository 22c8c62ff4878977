// plan.json: the reviewed plan that bin/apply executes. Versioned; bump PLAN_FORMAT_VERSION on any
// incompatible change. Everything except `metadata` is a pure function of the policy (and base),
// so `plan_id` — a hash of that part — names exactly what was reviewed. It covers everything
// bin/apply acts on: the hosts' files by their sha256, the terraform/ files by theirs, the policy
// path that relative `{file}` secrets are read beside, and the infrastructure diff the reviewer saw;
// `metadata` holds only what apply never uses.
//
// A plan directory holds:
//   plan.json            this document
//   plan.md              the review text
//   hosts/<host>/<path>  the content of every non-secret managed file, e.g. hosts/web1/etc/systemd/system/x.timer
//   terraform/           the synthesized stack (when the fleet provisions hosts)

import type { PlannedFile } from '../compile/generation.ts';
import type { ProvisioningSpec } from '../policy/model.ts';
import type { ResolvedGroup } from '../policy/resolved.ts';
import type { InfraDiff } from './infra-diff.ts';

export type { PlannedFile };

export const PLAN_FORMAT_VERSION = 3;

export type ChangeAction = 'create' | 'update' | 'delete';

export interface FileChange {
  readonly path: string;
  readonly action: ChangeAction;
  /** What changed for an update: content, mode, owner. */
  readonly fields?: readonly ('content' | 'mode' | 'owner')[];
}

export interface PlannedHost {
  readonly name: string;
  readonly group: string;
  /** ssh address; absent until a provisioned host exists (filled from Terraform outputs). */
  readonly address?: string;
  readonly port: number;
  /** Pinned host public key, "ssh-ed25519 AAAA...". */
  readonly hostKey?: string;
  readonly files: readonly PlannedFile[];
  readonly units: readonly string[];
  readonly packages: readonly string[];
  /** sha256 over files, units and packages: the generation this plan installs. */
  readonly generation: string;
  /** The generation the plan was computed against (null: nothing applied yet). */
  readonly baseGeneration: string | null;
  readonly changes: {
    readonly files: readonly FileChange[];
    readonly unitsEnabled: readonly string[];
    readonly unitsDisabled: readonly string[];
    readonly packagesAdded: readonly string[];
  };
}

/** A group as plan.json records it: exactly the resolved group (rollout order, soak, batches). */
export type PlannedGroup = ResolvedGroup;

/** The Terraform stack of a fleet that provisions hosts, as reviewed. */
export interface PlannedInfrastructure {
  /** terraform/<name> -> sha256 of its content: the directory holds exactly these files. */
  readonly stack: { readonly [name: string]: string };
  /** What the reviewer was shown; bin/apply refuses a destroy or replace that is not in it. */
  readonly diff: InfraDiff;
  /** Where `diff` came from: the engine's saved plan or an offline diff. */
  readonly source: string;
}

export interface PlanDocument {
  readonly format_version: typeof PLAN_FORMAT_VERSION;
  /** sha256 of the document without `metadata` and without `plan_id`. */
  readonly plan_id: string;
  readonly fleet: string;
  /** Policy file, relative to the directory bin/plan ran in; relative `{file}` secrets are read beside it. */
  readonly policy: string;
  /** Groups in rollout order. */
  readonly groups: readonly PlannedGroup[];
  /** Hosts by name, keys sorted. */
  readonly hosts: { readonly [name: string]: PlannedHost };
  /**
   * The fleet's provisioning settings when it creates hosts: secret references (the Hetzner
   * token, a pg connection string) that bin/apply resolves for the engine, never their values.
   */
  readonly provisioning?: ProvisioningSpec;
  /** Present exactly when the plan directory has a terraform/ stack. */
  readonly infrastructure?: PlannedInfrastructure;
  readonly summary: {
    readonly hostsChanged: number;
    readonly hostsUnchanged: number;
    readonly filesCreated: number;
    readonly filesUpdated: number;
    readonly filesDeleted: number;
  };
  /** The only part that differs between runs, and that bin/apply does not use. */
  readonly metadata: {
    readonly created_at: string;
    readonly upkeep_version: string;
  };
}
