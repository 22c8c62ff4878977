// bin/apply (also `upkeep apply`): roll a reviewed plan directory out to the fleet over ssh,
// staging first.
// Exit codes: 0 every host on the plan, 1 failed (nothing or part applied, no rollback), 3 rolled back.

import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { backupLinks } from '../apply/backup-keys.ts';
import { peerPins } from '../apply/peer-pins.ts';
import { hostBundle, loadReviewedPlan, reviewedHostFile } from '../apply/bundle.ts';
import { FleetLock } from '../apply/fleet-lock.ts';
import { FLEET, Journal } from '../apply/journal.ts';
import { streamProgress } from '../apply/progress.ts';
import { pinProvisionedHostKeys } from '../apply/host-key-rotation.ts';
import { provision } from '../apply/provision.ts';
import { remoteChecks } from '../apply/remote-checks.ts';
import { rollout, summarize } from '../apply/rollout.ts';
import { stackDirOf } from '../engine/engine-workdir.ts';
import { Connections } from '../hosts/connections.ts';
import { defaultPinsFile } from '../hosts/host-key-pins.ts';
import { buildInventory, readTerraformOutputs, type Inventory } from '../hosts/inventory.ts';
import type { Transport } from '../hosts/transport.ts';
import { resolveFileSecret, resolveSecret, secretBaseDir, SecretValues } from '../plan/secrets.ts';
import { exitWith, isMain } from './run-command.ts';

const HELP = `Usage: bin/apply PLAN_DIR [options]

Rolls a reviewed plan directory (written by bin/plan) out to its hosts over ssh: groups in plan
order, staging first, each group in batches of its batchSize. After every wave its hosts confirm
over a new connection and pass a health gate (their checks, no failed units, managed timers
active); a wave that fails beyond its failure budget is rolled back to the previous generation and
the rollout stops. Hosts are refused when they are not on the generation the plan was computed
against (re-plan with bin/plan --live). plan.json must still hash to its plan_id, which covers the
host files, the terraform/ stack and the infrastructure diff the reviewer saw; the engine's plan at
apply time may destroy or replace only what that diff showed.

  --plan-id ID             apply only the plan a reviewer approved: its full plan_id or the short
                           id bin/plan prints (a prefix of at least 12 hex characters); any other
                           plan is refused before anything runs
  --identity FILE          ssh private key (default: ssh's own defaults / agent)
  --known-hosts FILE       known_hosts pinning the hosts' keys (default: the keys in the plan
                           or Terraform outputs, written to a private temporary file)
  --terraform-outputs FILE \`terraform output -json\` of the fleet's stack (provisioned hosts);
                           without it a plan with a terraform/ stack is first applied with
                           tofu or terraform (PATH or UPKEEP_TERRAFORM) and its outputs used
  --no-provision           hosts only: do not run the Terraform engine
  --host-keys FILE         the pinned keys provisioned hosts generated in place of their
                           bootstrap keys (default: upkeep-host-keys.json beside the policy);
                           written when a host is rotated: commit it with the policy
  --parallel N             hosts contacted at once (default 8)
  --skip-soak              do not wait the soak time between groups (recorded in the journal)
  --confirm-timeout S      seconds a changed host waits for confirmation over a new connection
                           before rolling itself back (default 60)
  --journal FILE           JSON journal of every action (default PLAN_DIR/apply-journal.json)
  --break-lock             take over a fleet lock or host lock held by another (dead) run
  --json                   print the result as JSON on stdout
  -h, --help               this text

Progress goes to stderr (colour only on a terminal without NO_COLOR).
Exit codes: 0 ok, 1 failed, 3 rolled back.
`;

export interface ApplyRunResult {
  readonly exitCode: number;
  /** ssh round trips per host, over every connection the run opened to it. */
  readonly roundTrips: Readonly<Record<string, number>>;
}

function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} takes a positive whole number, got ${JSON.stringify(value)}`);
  return n;
}

class UsageError extends Error {}

/** Runs bin/apply with `argv`; progress goes to `stderr`, results to `stdout`. */
export async function runApply(argv: readonly string[], io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream & { isTTY?: boolean } } = process): Promise<ApplyRunResult> {
  const started = Date.now();
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      'plan-id': { type: 'string' },
      identity: { type: 'string' },
      'known-hosts': { type: 'string' },
      'terraform-outputs': { type: 'string' },
      'no-provision': { type: 'boolean', default: false },
      'host-keys': { type: 'string' },
      parallel: { type: 'string', default: '8' },
      'skip-soak': { type: 'boolean', default: false },
      'confirm-timeout': { type: 'string', default: '60' },
      journal: { type: 'string' },
      'break-lock': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return { exitCode: 0, roundTrips: {} };
  }
  if (positionals.length !== 1) throw new UsageError(`expected one plan directory, got ${positionals.length} (see bin/apply --help)`);
  const parallel = positiveInt(values.parallel, '--parallel');
  const confirmTimeoutSeconds = positiveInt(values['confirm-timeout'], '--confirm-timeout');

  const planDir = await loadReviewedPlan(positionals[0] as string, values['plan-id']);
  const { plan } = planDir;

  // Every secret is resolved before any host or server changes: a missing one must not stop a rollout half way.
  const secrets = new SecretValues();
  const secretSource = { baseDir: secretBaseDir(plan) };
  for (const host of Object.values(plan.hosts)) {
    for (const file of host.files) {
      if (!file.secret) continue;
      // The reference's own value is redacted too when hosts get only a value derived from it.
      secrets.add(resolveSecret(file.secret, secretSource));
      secrets.add(resolveFileSecret(file.secret, secretSource));
    }
  }

  const progress = streamProgress(io.stderr);
  const journal = new Journal({ file: resolve(values.journal ?? join(planDir.dir, 'apply-journal.json')), planId: plan.plan_id, fleet: plan.fleet, redact: (t) => secrets.redact(t) });
  let inventory: Inventory;
  try {
    const provisionNow = !values['terraform-outputs'] && !values['no-provision'] && stackDirOf(planDir.dir) !== undefined;
    const terraformOutputs = values['terraform-outputs'] ? readTerraformOutputs(values['terraform-outputs']) : provisionNow ? await provision(planDir.dir, plan, { log: (line) => progress(secrets.redact(line)), secrets, journal }) : undefined;
    inventory = buildInventory(plan, { ...(terraformOutputs !== undefined && { terraformOutputs }), externalKnownHosts: values['known-hosts'] !== undefined });
    // Provisioned hosts drop the key Terraform made for them (it is readable in user_data and state).
    if (values['known-hosts'] === undefined) {
      inventory = await pinProvisionedHostKeys({
        plan,
        inventory,
        pinsFile: resolve(values['host-keys'] ?? defaultPinsFile(plan)),
        connect: (hosts) => new Connections(hosts, { ...(values.identity && { identity: values.identity }) }),
        journal,
        progress: (line, tone) => progress(secrets.redact(line), tone),
        parallel,
      });
    } else if (terraformOutputs !== undefined) {
      progress(`--known-hosts: the host keys of provisioned hosts are pinned by ${values['known-hosts']} and not rotated`, 'warn');
    }
  } catch (error) {
    journal.finish('failed', 1);
    throw error;
  }

  const ssh = new Connections(inventory, { ...(values.identity && { identity: values.identity }), ...(values['known-hosts'] && { knownHosts: values['known-hosts'] }) });
  const main = new Map<string, Transport>();
  const connections = {
    transport: (host: string) => main.get(host) ?? (main.set(host, ssh.connect(host)), main.get(host) as Transport),
    freshTransport: (host: string) => ssh.connect(host),
  };

  const runId = randomBytes(6).toString('hex');
  const holder = `${userInfo().username}@${hostname()} pid ${process.pid}`;
  const lockHost = plan.groups.find((g) => g.hosts.length > 0)?.hosts[0];
  progress(`applying plan ${plan.plan_id.slice(0, 12)} of fleet ${plan.fleet} (run ${runId})`, 'heading');
  try {
    const result = await rollout({
      plan,
      bundle: (host) => hostBundle(planDir, host, secretSource, secrets),
      connections,
      journal,
      progress: (line, tone) => progress(secrets.redact(line), tone),
      ...(lockHost && { fleetLock: new FleetLock({ transport: connections.transport(lockHost), runId, holder, planId: plan.plan_id }) }),
      breakLock: values['break-lock'],
      parallel,
      skipSoak: values['skip-soak'],
      confirmTimeoutSeconds,
      holder: `${holder} run ${runId}`,
      // Planned backup.env files say which hosts back up over ssh to which fleet host; clients of a
      // provisioned one pin it as the rollout itself connects to it (address, rotated key).
      backupLinks: backupLinks(plan, (host, path) => reviewedHostFile(planDir, plan.hosts[host]!, path).toString('utf8'), inventory),
      // Planned provisioned-peers files say which hosts reach provisioned peers; those are pinned
      // on them as the rollout itself connects to them (address, rotated key).
      peerPins: peerPins(plan, (host, path) => reviewedHostFile(planDir, plan.hosts[host]!, path).toString('utf8'), inventory),
      // Planned check files say which checks watch a host from another (a monitor): its gate runs them.
      remoteChecks: remoteChecks(plan, (host, path) => reviewedHostFile(planDir, plan.hosts[host]!, path).toString('utf8')),
    });
    const roundTrips = ssh.roundTrips();
    for (const line of summarize(result, plan.plan_id, Date.now() - started)) progress(secrets.redact(line), result.exitCode === 0 ? 'ok' : 'fail');
    progress(`journal: ${journal.file}`);
    if (values.json) {
      io.stdout.write(`${JSON.stringify({ plan_id: plan.plan_id, outcome: result.outcome, exit_code: result.exitCode, hosts: result.hosts, round_trips: roundTrips, journal: journal.file, duration_ms: Date.now() - started }, null, 2)}\n`);
    }
    return { exitCode: result.exitCode, roundTrips };
  } catch (error) {
    journal.record({ host: FLEET, step: 'apply' }, 'failed', new Date(started), (error as Error).message);
    journal.finish('failed', 1);
    throw error;
  } finally {
    await ssh.close();
  }
}

if (isMain(import.meta.url)) exitWith('bin/apply', runApply(process.argv.slice(2)).then((result) => result.exitCode));
