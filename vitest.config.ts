import { defineConfig } from 'vitest/config';
import { FLEET_TEST_FILES, fleetAwareProjects } from './test/fleet/vitest-project.ts';

// Files that boot real hosts run one at a time in the "fleet" project; everything else in parallel.
export default defineConfig({
  test: {
    testTimeout: 30_000,
    projects: fleetAwareProjects([...FLEET_TEST_FILES, 'test/apply/host-apply.test.ts', 'test/apply/host-failures.test.ts', 'test/apply/transport-ssh.test.ts', 'test/runtime/units-on-systemd.test.ts']),
  },
});
