// `upkeep update security|routine PLAN_DIR`: an update wave over the fleet of an applied plan:
// staging installs from the archive, production installs exactly the versions staging ran
// through its gates and soak (lib/apply/update-wave.ts).
// Exit codes: 0 ok, 1 failed (a staging failure promotes nothing).

import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadReviewedPlan } from '../apply/bundle.ts';
import { FleetLock } from '../apply/fleet-lock.ts';
import { FLEET, Journal } from '../apply/journal.ts';
import { streamProgress } from '../apply/progress.ts';
import { summarizeWave, updateWave, type UpdateKind } from '../apply/update-wave.ts';
import { Connections } from '../hosts/connections.ts';
import { buildInventory, readTerraformOutputs } from '../hosts/inventory.ts';
import type { Transport } from '../hosts/transport.ts';
import type { PlanDocument } from '../plan/plan-format.ts';
import { CALENDAR_FILE, readPlanCalendar } from '../plan/plan-dir.ts';
import { withRebootPending, type CalendarHost } from '../plan/window-calendar.ts';
import { exitWith, isMain } from './run-command.ts';

const HELP = `Usage: upkeep update security|routine PLAN_DIR [options]

Runs an update wave over the hosts of an applied plan directory, in the plan's group order:

  1. staging hosts install from the archive (security: security origins only; routine: only
     while the host's maintenance window is open), in batches, each batch health-gated;
  2. the soak: staging keeps running what it installed for its group's soak time (counted from
     the install, so versions staging installed on its own hours ago need no wait);
  3. right before promotion, every staging host that runs a version about to be promoted is
     health-gated, whatever installed the version; any failing check, or a host the gate cannot
     reach, promotes nothing;
  4. production hosts install exactly the versions staging ran through the soak, never newer
     (apt-get install NAME=VERSION), group by group in batches with health gates. Updates that
     need no reboot and no service restart are installed at once; disruptive ones only while
     the host's window is open, otherwise they wait for its next window.

A failed gate on staging stops the wave and nothing is promoted. Production hosts never install
an unpromoted version on their own; when this command does not run, their security-updates
check alerts once a fix has been pending longer than the security deadline.

Afterwards (whatever the outcome) it reads on every host whether a reboot is now pending and
rewrites the customers' calendar: the plan's calendar.ics with each host's pending reboot, its
events' SEQUENCE bumped where that changed (stable UIDs, the plan's windows).

  --identity FILE          ssh private key (default: ssh's own defaults / agent)
  --known-hosts FILE       known_hosts pinning the hosts' keys (default: the keys in the plan
                           or Terraform outputs)
  --terraform-outputs FILE \`terraform output -json\` of the fleet's stack (provisioned hosts)
  --parallel N             hosts contacted at once (default 8)
  --skip-soak              do not wait for staging's soak (recorded in the journal)
  --journal FILE           JSON journal of every action (default PLAN_DIR/update-KIND-journal.json)
  --promoted FILE          the promoted versions as JSON (default PLAN_DIR/update-KIND-promoted.json)
  --calendar FILE          where to write the calendar (default PLAN_DIR/calendar.ics); an
                           existing FILE is the previous feed its SEQUENCE numbers continue from
  --break-lock             take over a fleet lock held by another (dead) run
  --json                   print the result as JSON on stdout
  -h, --help               this text

Progress goes to stderr. Exit codes: 0 ok, 1 failed.
`;

class UsageError extends Error {}

/** Runs `upkeep update` with `argv`; resolves to its exit code. */
export async function runUpdate(argv: readonly string[], io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream & { isTTY?: boolean } } = process): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      identity: { type: 'string' },
      'known-hosts': { type: 'string' },
      'terraform-outputs': { type: 'string' },
      parallel: { type: 'string', default: '8' },
      'skip-soak': { type: 'boolean', default: false },
      journal: { type: 'string' },
      promoted: { type: 'string' },
      calendar: { type: 'string' },
      'break-lock': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  const [kind, dir, ...extra] = positionals;
  if (kind !== 'security' && kind !== 'routine') throw new UsageError(`expected security or routine, got ${JSON.stringify(kind ?? '')} (see upkeep update --help)`);
  if (dir === undefined || extra.length > 0) throw new UsageError('expected one plan directory after the kind (see upkeep update --help)');
  const parallel = Number(values.parallel);
  if (!Number.isInteger(parallel) || parallel < 1) throw new UsageError(`--parallel takes a positive whole number, got ${JSON.stringify(values.parallel)}`);
  const updateKind: UpdateKind = kind;

  const planDir = await loadReviewedPlan(dir);
  const { plan } = planDir;
  const inventory = buildInventory(plan, {
    ...(values['terraform-outputs'] !== undefined && { terraformOutputs: readTerraformOutputs(values['terraform-outputs']) }),
    externalKnownHosts: values['known-hosts'] !== undefined,
  });
  const progress = streamProgress(io.stderr);
  const journal = new Journal({ file: resolve(values.journal ?? join(planDir.dir, `update-${kind}-journal.json`)), planId: plan.plan_id, fleet: plan.fleet });
  const promotedFile = resolve(values.promoted ?? join(planDir.dir, `update-${kind}-promoted.json`));
  const calendarFile = resolve(values.calendar ?? join(planDir.dir, CALENDAR_FILE));
  const ssh = new Connections(inventory, { ...(values.identity && { identity: values.identity }), ...(values['known-hosts'] && { knownHosts: values['known-hosts'] }) });
  const open = new Map<string, Transport>();
  const transport = (host: string) => open.get(host) ?? (open.set(host, ssh.connect(host)), open.get(host) as Transport);
  const runId = randomBytes(6).toString('hex');
  const holder = `${userInfo().username}@${hostname()} pid ${process.pid}`;
  const lockHost = plan.groups.find((g) => g.hosts.length > 0)?.hosts[0];
  progress(`${kind} update wave over fleet ${plan.fleet}, plan ${plan.plan_id.slice(0, 12)} (run ${runId})`, 'heading');
  try {
    const result = await updateWave({
      plan,
      kind: updateKind,
      transport,
      journal,
      progress,
      ...(lockHost && { fleetLock: new FleetLock({ transport: transport(lockHost), runId, holder, planId: plan.plan_id }) }),
      breakLock: values['break-lock'],
      parallel,
      skipSoak: values['skip-soak'],
      onPromote: (packages) => writeFileSync(promotedFile, `${JSON.stringify({ kind, plan_id: plan.plan_id, run: runId, promoted_at: new Date().toISOString(), packages }, null, 2)}\n`),
    });
    const calendar = writeCalendar(plan, planDir.dir, calendarFile, result.rebootPending);
    progress(calendar.text, calendar.written ? 'ok' : 'warn');
    for (const line of summarizeWave(result)) progress(line, result.exitCode === 0 ? 'ok' : 'fail');
    progress(`journal: ${journal.file}`);
    if (values.json) io.stdout.write(`${JSON.stringify({ ...result, journal: journal.file }, null, 2)}\n`);
    return result.exitCode;
  } catch (error) {
    journal.record({ host: FLEET, step: 'update' }, 'failed', new Date(), (error as Error).message);
    journal.finish('failed', 1);
    throw error;
  } finally {
    await ssh.close();
  }
}

/**
 * Writes the plan's calendar.ics with the pending reboots the wave read to `file` (atomically):
 * the windows come from the plan's own feed, the SEQUENCE numbers continue from `file`'s.
 */
function writeCalendar(plan: PlanDocument, dir: string, file: string, rebootPending: Readonly<Record<string, boolean>>): { written: boolean; text: string } {
  const feed = readPlanCalendar(dir);
  if (feed === undefined) return { written: false, text: `calendar: ${dir} has no ${CALENDAR_FILE} to start from (planned by an older upkeep?); re-run bin/plan to get one` };
  const hosts = new Map<string, CalendarHost>();
  for (const [name, host] of Object.entries(plan.hosts)) if (host.contract.updates) hosts.set(name, { name, group: host.group, reboot: host.contract.updates.reboot });
  const previous = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  const pending = new Map(Object.entries(rebootPending));
  const text = withRebootPending({ fleet: plan.fleet, plan: feed, hosts, rebootPending: pending, ...(previous !== undefined && { previous }) });
  const temp = join(dirname(file), `.${CALENDAR_FILE}.tmp-${process.pid}`);
  writeFileSync(temp, text);
  renameSync(temp, file);
  const count = [...pending.values()].filter(Boolean).length;
  return { written: true, text: `calendar: ${file} (${count} host(s) with a reboot pending${pending.size < hosts.size ? `; ${hosts.size - pending.size} not read, left as they were` : ''})` };
}

if (isMain(import.meta.url)) exitWith('upkeep update', runUpdate(process.argv.slice(2)));
