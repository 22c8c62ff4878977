// The fleet lock keeps two rollouts (say, two pipelines on different machines) from interleaving.
// It lives on a host of the fleet, because that is the one place every pipeline reaches: a lease
// file in the state directory, changed only under flock so two applicants cannot both win. The
// holder renews the lease while it works; a lease that stopped being renewed is reported as stale,
// with its holder and age, and only an explicit --break-lock takes it over (an automatic takeover
// would let a slow pipeline and a new one interleave).

import { STATE_DIR } from '../compile/desired-state.ts';
import type { Transport } from '../hosts/transport.ts';

export const FLEET_LOCK_FILE = `${STATE_DIR}/fleet-lock`;

/** A lease not renewed for this long is called stale in messages. @default */
export const DEFAULT_STALE_AFTER_SECONDS = 300;

export interface FleetLockHolder {
  readonly runId: string;
  /** Who took it, e.g. "ci@runner-7 pid 4242". */
  readonly holder: string;
  readonly planId: string;
  readonly ageSeconds: number;
  readonly secondsSinceRenewal: number;
}

export class FleetLockError extends Error {
  readonly holder: FleetLockHolder | null;
  constructor(message: string, holder: FleetLockHolder | null) {
    super(message);
    this.name = 'FleetLockError';
    this.holder = holder;
  }
}

// stdin: operation, run id, holder, plan id (one per line). stdout: the verdict, then the lease
// that was there before (run id, holder, plan id, acquired, renewed) and the host's clock.
// UPKEEP_ROOT: the image root a local transport works in (empty on a real host).
const SCRIPT = `set -eu
lease=\${UPKEEP_ROOT:-}${FLEET_LOCK_FILE}
mkdir -p "\${lease%/*}"
exec 9>>"$lease.flock"
flock -w 30 9 || { echo busy; exit 0; }
IFS= read -r op; IFS= read -r run; IFS= read -r holder; IFS= read -r plan
now=$(date +%s)
old_run=; old_holder=; old_plan=; old_acquired=; old_renewed=
if [ -f "$lease" ]; then
  { IFS= read -r old_run; IFS= read -r old_holder; IFS= read -r old_plan; IFS= read -r old_acquired; IFS= read -r old_renewed; } < "$lease" || :
fi
write() {
  printf '%s\\n%s\\n%s\\n%s\\n%s\\n' "$run" "$holder" "$plan" "$1" "$now" > "$lease.tmp"
  mv -f "$lease.tmp" "$lease"
}
report() { printf '%s\\n%s\\n%s\\n%s\\n%s\\n%s\\n%s\\n' "$1" "$old_run" "$old_holder" "$old_plan" "$old_acquired" "$old_renewed" "$now"; }
case $op in
  acquire)
    if [ -n "$old_run" ] && [ "$old_run" != "$run" ]; then report held; else write "$now"; report acquired; fi ;;
  break) write "$now"; report broken ;;
  renew)
    if [ "$old_run" = "$run" ]; then write "$old_acquired"; report renewed; else report lost; fi ;;
  release)
    if [ "$old_run" = "$run" ]; then rm -f "$lease"; report released; else report not-held; fi ;;
  *) echo "unknown operation" >&2; exit 2 ;;
esac
`;

type Verdict = 'acquired' | 'held' | 'broken' | 'renewed' | 'lost' | 'released' | 'not-held' | 'busy';

interface LeaseAnswer {
  readonly verdict: Verdict;
  /** The lease as it was before this operation; null when there was none. */
  readonly previous: FleetLockHolder | null;
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').trim() || '-';
}

export function describeHolder(holder: FleetLockHolder, staleAfterSeconds = DEFAULT_STALE_AFTER_SECONDS): string {
  const stale = holder.secondsSinceRenewal > staleAfterSeconds ? `; STALE: not renewed for ${holder.secondsSinceRenewal}s` : `; renewed ${holder.secondsSinceRenewal}s ago`;
  return `${holder.holder} (run ${holder.runId}, plan ${holder.planId.slice(0, 12)}) for ${holder.ageSeconds}s${stale}`;
}

export interface FleetLockOptions {
  /** The host the lease lives on: the first host of the first group. */
  readonly transport: Transport;
  readonly runId: string;
  readonly holder: string;
  readonly planId: string;
  /** @default DEFAULT_STALE_AFTER_SECONDS */
  readonly staleAfterSeconds?: number;
}

export class FleetLock {
  private readonly options: FleetLockOptions;

  constructor(options: FleetLockOptions) {
    this.options = options;
  }

  get host(): string {
    return this.options.transport.host;
  }

  private async lease(op: 'acquire' | 'break' | 'renew' | 'release'): Promise<LeaseAnswer> {
    const { transport, runId, holder, planId } = this.options;
    const result = await transport.run(SCRIPT, [op, oneLine(runId), oneLine(holder), oneLine(planId), ''].join('\n'), { timeoutMs: 60_000 });
    if (result.exitCode !== 0) throw new FleetLockError(`${transport.host}: the fleet lock script failed (exit ${result.exitCode}): ${oneLine(result.stderr)}`, null);
    const [verdict, run, who, plan, acquired, renewed, now] = result.stdout.split('\n');
    const clock = Number(now);
    const previous: FleetLockHolder | null = run
      ? { runId: run, holder: who ?? '-', planId: plan ?? '-', ageSeconds: clock - Number(acquired), secondsSinceRenewal: clock - Number(renewed) }
      : null;
    return { verdict: verdict as Verdict, previous };
  }

  /**
   * Takes the lease, or throws FleetLockError naming its holder and age. `force` (--break-lock)
   * takes it over whoever holds it and returns the holder it displaced.
   */
  async acquire(force = false): Promise<FleetLockHolder | null> {
    const answer = await this.lease(force ? 'break' : 'acquire');
    if (answer.verdict === 'busy') throw new FleetLockError(`${this.host}: the fleet lock file is busy (another applier is changing it right now)`, null);
    if (answer.verdict === 'held' && answer.previous) {
      throw new FleetLockError(
        `the fleet is locked by ${describeHolder(answer.previous, this.options.staleAfterSeconds)} (lock on ${this.host}:${FLEET_LOCK_FILE}). ` +
          'Wait for that rollout to finish; if it is dead, re-run with --break-lock.',
        answer.previous,
      );
    }
    return answer.verdict === 'broken' ? answer.previous : null;
  }

  /** Renews the lease; throws when another run broke it, so this one stops before doing more. */
  async renew(): Promise<void> {
    const answer = await this.lease('renew');
    if (answer.verdict === 'lost') {
      throw new FleetLockError(`the fleet lock on ${this.host} was taken over${answer.previous ? ` by ${describeHolder(answer.previous)}` : ''}; stopping`, answer.previous);
    }
  }

  async release(): Promise<void> {
    await this.lease('release');
  }
}
