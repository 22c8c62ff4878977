// How vitest must run the fleet tests: one file at a time (each boots containers on a machine
// with few cores, and a cold first run builds the base image), with timeouts that allow for it.
// Imported by the vitest configuration, so it stays free of anything but vitest's own types.
import { configDefaults, type TestProjectInlineConfiguration } from 'vitest/config';

/** vitest hook timeout for starting a fleet: a cold base image build takes minutes. */
export const FLEET_HOOK_TIMEOUT_MS = 900_000;
/** vitest timeout for one fleet test. */
export const FLEET_TEST_TIMEOUT_MS = 180_000;

/** Test files that boot a fleet, at the least. */
export const FLEET_TEST_FILES: readonly string[] = ['test/fleet/**/*.test.ts'];

/** The contract tests: the hosting example booted with real services, faults injected, the promise measured. */
export const CONTRACT_TEST_FILES: readonly string[] = ['test/contract/**/*.test.ts'];

/**
 * Three vitest projects: "unit" runs every other test file in parallel, "fleet" runs the files that
 * boot a fleet one at a time with the fleet timeouts, and "contract" the contract fleet's files,
 * likewise one at a time.
 * Use as `test: { projects: fleetAwareProjects([...FLEET_TEST_FILES, 'test/apply/host-*.test.ts']) }`.
 */
export function fleetAwareProjects(fleetTestFiles: readonly string[] = FLEET_TEST_FILES): TestProjectInlineConfiguration[] {
  return [
    {
      extends: true,
      test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, ...fleetTestFiles, ...CONTRACT_TEST_FILES] },
    },
    {
      extends: true,
      test: {
        name: 'fleet',
        include: [...fleetTestFiles],
        fileParallelism: false,
        testTimeout: FLEET_TEST_TIMEOUT_MS,
        hookTimeout: FLEET_HOOK_TIMEOUT_MS,
      },
    },
    {
      extends: true,
      test: {
        name: 'contract',
        include: [...CONTRACT_TEST_FILES],
        fileParallelism: false,
        testTimeout: FLEET_TEST_TIMEOUT_MS,
        hookTimeout: FLEET_HOOK_TIMEOUT_MS,
      },
    },
  ];
}
