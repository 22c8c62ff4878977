// Checks that watch a host from another host (a monitor): the http, mail and DNS checks of the
// hosting example run on monitor1, which is in production and configured last. A staging host's
// health gate must still run them, on the host that holds them, or a change that breaks the
// website on staging would pass its gate. The planned check files say which unit on which host
// watches which subject (lib/compile/monitoring.ts writes them).

import { CONFIG_DIR } from '../compile/desired-state.ts';
import type { PlanDocument } from '../plan/plan-format.ts';

/** A check unit on `runner` whose subject is another host. */
export interface RemoteCheck {
  readonly subject: string;
  readonly runner: string;
  /** upkeep-check-<id>.service */
  readonly unit: string;
}

const CHECK_ENV = new RegExp(`^${CONFIG_DIR}/checks/([a-z0-9-]+)\\.env$`);
const SUBJECT_LINE = /^UPKEEP_CHECK_SUBJECT='([A-Za-z0-9._-]+)'$/m;

/** Every check of the plan that runs on another host than its subject, sorted by runner and unit. */
export function remoteChecks(plan: PlanDocument, plannedFile: (host: string, path: string) => string): RemoteCheck[] {
  const found: RemoteCheck[] = [];
  for (const runner of Object.keys(plan.hosts).sort()) {
    for (const file of plan.hosts[runner]!.files) {
      const id = CHECK_ENV.exec(file.path)?.[1];
      if (id === undefined) continue;
      const subject = SUBJECT_LINE.exec(plannedFile(runner, file.path))?.[1];
      if (subject !== undefined && subject !== runner && plan.hosts[subject] !== undefined) found.push({ subject, runner, unit: `upkeep-check-${id}.service` });
    }
  }
  return found.sort((a, b) => a.runner.localeCompare(b.runner) || a.unit.localeCompare(b.unit));
}
