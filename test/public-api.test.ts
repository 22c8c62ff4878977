// Pins the public API: adding or removing an export is a deliberate change to this list.
import { describe, expect, it } from 'vitest';
import * as upkeep from '../lib/index.ts';

describe('the public API of upkeep', () => {
  it('exports exactly these names', () => {
    expect(Object.keys(upkeep).sort()).toEqual([
      'BATCH_ALLOWANCE_SECONDS',
      'DEFAULTS',
      'EngineError',
      'EngineNotFoundError',
      'FleetLock',
      'FleetLockError',
      'Journal',
      'LocalTransport',
      'PLAN_FORMAT_VERSION',
      'PolicyError',
      'RECEIVER_KEYS_DIR',
      'STACK_FILE',
      'SecretError',
      'SecretValues',
      'SshTransport',
      'TERRAFORM_HOSTS_OUTPUT',
      'TOKEN_VARIABLE',
      'TerraformEngine',
      'TlsPrivateKey',
      'TlsProvider',
      'UPKEEP_VERSION',
      'buildInventory',
      'buildPlan',
      'checkFleetShape',
      'checkUnitName',
      'checkUnitsOf',
      'compileFleet',
      'compileHost',
      'defineFleet',
      'definePolicy',
      'diffInfra',
      'engineSecretEnv',
      'findEngine',
      'fleetShapeIssues',
      'formatPath',
      'hcloud',
      'hostBundle',
      'infraDiffFromPlanJson',
      'loadPolicy',
      'loadReviewedPlan',
      'prepareFleet',
      'readLiveState',
      'readPlanDir',
      'renderEnvFile',
      'renderInfraSection',
      'renderPlanMarkdown',
      'resolveFleet',
      'resolveSecret',
      'resolveWindow',
      'rollout',
      'shellQuote',
      'synthesizeInfra',
      'validateFleet',
      'windowEnv',
      'writeKnownHosts',
      'writePlanDir',
    ]);
  });

  it('is what the package name resolves to, as the examples import it', async () => {
    const byName = await import('upkeep');
    expect(byName.defineFleet).toBe(upkeep.defineFleet);
  });
});
