// The public API of upkeep. Everything a policy author or a tool built on upkeep needs is
// exported here and nowhere else; test/public-api.test.ts pins this list.

export * from './policy/model.ts';
export type * from './policy/resolved.ts';
export { PolicyError, formatPath, type PolicyIssue, type PolicyPath, type PolicySource, type SourceLocation } from './policy/errors.ts';
export { loadPolicy, checkFleetShape } from './policy/load.ts';
export { fleetShapeIssues } from './policy/fleet-shape.ts';
export { resolveFleet, DEFAULTS } from './policy/resolve.ts';
export { validateFleet, BATCH_ALLOWANCE_SECONDS } from './policy/validate.ts';
export { prepareFleet } from './policy/prepare.ts';
export { resolveWindow } from './policy/window.ts';
export type { HostDesiredState, ManagedFile } from './compile/desired-state.ts';
export { compileHost } from './compile/host.ts';
export { compileFleet, type CompiledFleet } from './compile/fleet.ts';
export { synthesizeInfra, STACK_FILE, TERRAFORM_HOSTS_OUTPUT, TOKEN_VARIABLE, type SynthesizeInfraOptions } from './compile/infra.ts';
export * as hcloud from './compile/hcloud/index.ts';
export { TlsPrivateKey, TlsProvider } from './compile/host-keys.ts';
export { shellQuote, renderEnvFile } from './compile/env-file.ts';
export { checkUnitName } from './compile/monitoring.ts';
export { RECEIVER_KEYS_DIR } from './compile/backups.ts';
export { windowEnv } from './compile/updates.ts';
export { diffInfra, infraDiffFromPlanJson, renderInfraSection, type InfraDiff } from './plan/infra-diff.ts';
export { TerraformEngine, findEngine, engineSecretEnv, EngineError, EngineNotFoundError, type EngineOptions, type EngineOutputs } from './engine/terraform.ts';
export { buildPlan, type BaseHost, type BuiltPlan, type PlanInput } from './plan/build-plan.ts';
export { renderPlanMarkdown } from './plan/markdown.ts';
export { readPlanDir, writePlanDir } from './plan/plan-dir.ts';
export * from './plan/plan-format.ts';
export { UPKEEP_VERSION } from './version.ts';
export { rollout, checkUnitsOf, type RolloutOptions, type RolloutResult, type HostOutcome } from './apply/rollout.ts';
export { FleetLock, FleetLockError } from './apply/fleet-lock.ts';
export { Journal, type JournalDocument, type JournalEntry } from './apply/journal.ts';
export { buildInventory, writeKnownHosts } from './hosts/inventory.ts';
export { loadReviewedPlan, hostBundle } from './apply/bundle.ts';
export { resolveSecret, SecretValues, SecretError } from './plan/secrets.ts';
export { readLiveState, type LiveHost } from './hosts/live-state.ts';
export type { Transport, RunResult, RunOptions } from './hosts/transport.ts';
export { SshTransport } from './hosts/ssh-transport.ts';
export { LocalTransport } from './hosts/local-transport.ts';
export {
  apply,
  readState,
  confirm,
  rollback,
  healthGate,
  breakLock,
  HostAgentError,
  type HostBundle,
  type BundleFile,
  type ApplyOptions,
  type ApplyResult,
  type HostState,
  type HealthReport,
  type LockHolder,
} from './hosts/host-agent.ts';
export { pMap, TransportError } from './hosts/transport.ts';
export { provision, type ProvisionOptions } from './apply/provision.ts';
export { stackDirOf } from './engine/engine-workdir.ts';
export { planWithEngine } from './engine/engine-plan.ts';
export { readLiveBase, renderDriftSection } from './hosts/live-base.ts';
export { backupLinks, exchangeBackupKeys, BACKUP_ENV, type BackupLink, type BackupKeysOptions } from './apply/backup-keys.ts';
