// bin/plan (also `upkeep plan`): load, validate and compile a policy; write the plan directory
// for review.
// Exit codes: 0 no changes against the base, 2 changes, 1 error (as terraform plan -detailed-exitcode).

import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { compileFleetPlanned } from '../compile/fleet.ts';
import { loadPolicy } from '../policy/load.ts';
import { formatIssue } from '../policy/errors.ts';
import { monitorHeartbeatWarnings } from '../policy/monitor-heartbeat.ts';
import { prepareFleet } from '../policy/prepare.ts';
import { hardwareCheckWarnings } from '../policy/hardware-warnings.ts';
import { localMailRouteWarnings } from '../policy/alert-route-rules.ts';
import { buildPlan, withInfraDiff, type BaseHost } from '../plan/build-plan.ts';
import { planWithEngine } from '../engine/engine-plan.ts';
import { diffInfra, renderInfraSection, type InfraDiff } from '../plan/infra-diff.ts';
import { readLiveBase, renderDriftSection } from '../hosts/live-base.ts';
import { renderMitigationSection, renderPlanMarkdown, stickyMarker, summaryLine } from '../plan/markdown.ts';
import { diffContracts } from '../plan/contract-diff.ts';
import { planAtGitRef } from '../plan/git-base.ts';
import { mdCode } from '../plan/markdown-text.ts';
import { PlanDirWriter, planJsonText, readPlanCalendar, readPlanDir } from '../plan/plan-dir.ts';
import { renderWindowCalendar } from '../plan/window-calendar.ts';
import { UPKEEP_VERSION } from '../version.ts';
import { limitHeapGrowth } from './heap-growth.ts';
import { exitWith, isMain } from './run-command.ts';

const HELP = `Usage: bin/plan [POLICY] [options]

Loads a maintenance policy (.ts or .yaml), validates the whole fleet, compiles every host and
writes a reviewable plan directory: plan.json, plan.md, objects/ (every file content once),
terraform/ and calendar.ics (every host's maintenance windows, for customers' calendars). plan.md is
the pull-request comment: it starts with a hidden marker naming the fleet
(<!-- upkeep-plan fleet=NAME -->) for a bot to find and update its one comment, and it fits
GitHub's 65,536-character limit with the summary, the contract changes and every warning kept.

POLICY             policy file (default: upkeep.ts or upkeep.yaml in the current directory)
  --out DIR        where to write the plan (default: out/plan)
  --base DIR       an earlier plan directory to compare against (default: nothing applied)
  --base git:REF   the policy as it was at a git ref (branch, tag, commit), compiled in a
                   temporary worktree, as the base: a pull request against main shows its diff
                   and its maintenance-contract changes with --base git:origin/main
  --live           compare against the live hosts over ssh (one round trip each) and show drift
  --identity FILE  with --live: ssh private key
  --known-hosts FILE
                   with --live: your known_hosts (default: the host keys pinned in the policy)
  --terraform-outputs FILE
                   with --live: \`terraform output -json\` for provisioned hosts
  --json           print the summary as JSON on stdout
  -h, --help       this text

Exit codes: 0 no changes, 2 changes present, 1 error (nothing is written on error).
`;

function defaultPolicy(): string {
  const found = ['upkeep.ts', 'upkeep.yaml', 'upkeep.yml'].find((f) => existsSync(f));
  if (!found) throw new Error('no policy given and no upkeep.ts or upkeep.yaml in the current directory (see bin/plan --help)');
  return found;
}

function parseOptions(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      out: { type: 'string', default: 'out/plan' },
      base: { type: 'string' },
      live: { type: 'boolean', default: false },
      identity: { type: 'string' },
      'known-hosts': { type: 'string' },
      'terraform-outputs': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}

type PlanValues = ReturnType<typeof parseOptions>['values'];

/** Runs bin/plan with `argv`; resolves to its exit code. */
export async function runPlan(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseOptions(argv);
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length > 1) throw new Error(`expected one policy file, got ${positionals.length} (see bin/plan --help)`);
  if (values.live && values.base) throw new Error('--live and --base are two different bases: give one');
  const policyFile = positionals[0] ?? defaultPolicy();
  limitHeapGrowth();

  const { spec, source } = await loadPolicy(policyFile);
  const fleet = prepareFleet(spec, source);
  // Warnings name the file and line where the policy can say otherwise; they do not stop the plan.
  for (const warning of [...hardwareCheckWarnings(fleet), ...monitorHeartbeatWarnings(fleet), ...localMailRouteWarnings(spec, fleet)]) process.stderr.write(`bin/plan: warning: ${formatIssue(warning, source)}
`);
  // Terraform runs inside DIR/terraform, which every plan replaces: local state must live in the
  // project (the working directory), addressed relatively so the plan stays the same on any machine.
  const projectDir = relative(resolve(values.out, 'terraform'), process.cwd()) || '.';
  // Each host's files go to the plan directory as it is compiled (see PlanDirWriter); the directory
  // takes the place of --out only at the end, and not at all on an error.
  const writer = await PlanDirWriter.open(values.out);
  try {
    return await planInto(writer, fleet, policyFile, projectDir, values);
  } catch (error) {
    await writer.abandon();
    throw error;
  }
}

async function planInto(writer: PlanDirWriter, fleet: ReturnType<typeof prepareFleet>, policyFile: string, projectDir: string, values: PlanValues): Promise<number> {
  const compiled = await compileFleetPlanned(fleet, (hash, content) => writer.object(hash, content), () => writer.room(), { projectDir });

  const base = values.base?.startsWith('git:') ? await planAtGitRef(policyFile, values.base.slice('git:'.length), projectDir) : values.base ? await readPlanDir(values.base) : undefined;
  const metadata = { created_at: new Date().toISOString(), upkeep_version: UPKEEP_VERSION };
  const policy = relative(process.cwd(), resolve(policyFile));
  let baseHosts = new Map<string, BaseHost>(
    Object.values(base?.document.hosts ?? {}).map((h) => [h.name, { generation: h.generation, files: h.files, units: h.units, packages: h.packages }]),
  );
  let live: Awaited<ReturnType<typeof readLiveBase>> | undefined;
  let rebootPending: ReadonlyMap<string, boolean> | undefined;
  if (values.live) {
    // The hosts to read and their pinned keys come from the plan itself.
    const { document: hostsOnly } = buildPlan({ fleet, hosts: compiled.hosts, base: baseHosts, policy, metadata });
    live = await readLiveBase(hostsOnly, {
      ...(values.identity && { identity: values.identity }),
      ...(values['known-hosts'] && { knownHosts: values['known-hosts'] }),
      ...(values['terraform-outputs'] && { terraformOutputs: values['terraform-outputs'] }),
    });
    baseHosts = live.base;
    rebootPending = live.rebootPending;
  }
  let infra = compiled.terraform || base?.terraform ? diffInfra(base?.terraform, compiled.terraform) : undefined;
  const offlineSource = values.base?.startsWith('git:')
    ? `offline diff against --base ${mdCode(values.base)}`
    : values.base
      ? 'offline diff against --base'
      : 'offline diff against an empty base (no --base given)';
  // The stack and the diff shown for it are part of what plan_id names: bin/apply checks both.
  const infrastructure = compiled.terraform && infra && { files: compiled.terraform, diff: infra, source: offlineSource };
  let { document } = buildPlan({ fleet, hosts: compiled.hosts, base: baseHosts, policy, ...(infrastructure && { infrastructure }), metadata });
  // Against a stored plan or a git ref, plan.md says first what the change does to the promise.
  const contract = base ? diffContracts(base.document.hosts, document.hosts) : undefined;
  const render = (plan: typeof document, diff: InfraDiff | undefined, source: string) =>
    renderPlanMarkdown(plan, {
      ...(contract && { contract }),
      sections: [
        (compact: boolean) => diff && renderInfraSection(diff, source, compact),
        (compact: boolean) => renderMitigationSection(fleet, compact),
        (compact: boolean) => live && renderDriftSection(live.drift, compact),
      ],
    });
  let markdown = render(document, infra, offlineSource);
  // SEQUENCE counts changes since the feed customers subscribed to: the base plan's, else the one replaced.
  const previous = values.base ? readPlanCalendar(values.base) : readPlanCalendar(values.out);
  const calendar = renderWindowCalendar({ fleet, ...(previous !== undefined && { previous }), ...(rebootPending && { rebootPending }) });
  await writer.finish({ document, markdown, calendar, ...(compiled.terraform && { terraform: compiled.terraform }) });
  // With an engine and credentials, the engine's own plan of the written stack replaces the offline diff.
  const fromEngine = compiled.terraform && (await planWithEngine(values.out, document, { warn: (line) => process.stderr.write(`bin/plan: warning: ${line}\n`) }));
  if (fromEngine) {
    infra = fromEngine.diff;
    document = withInfraDiff(document, fromEngine.diff, fromEngine.source);
    markdown = render(document, infra, fromEngine.source);
    await writeFile(join(values.out, 'plan.json'), planJsonText(document));
    await writeFile(join(values.out, 'plan.md'), markdown);
  }

  const infraChanges = infra ? infra.add.length + infra.change.length + infra.replace.length + infra.destroy.length : 0;
  const s = document.summary;
  if (values.json) {
    const weakens = (contract ?? []).filter((c) => c.weakens);
    process.stdout.write(
      `${JSON.stringify({ plan_id: document.plan_id, out: values.out, summary: s, infrastructure: infra ?? null, comment_marker: stickyMarker(document.fleet), contract_weakened: contract ? weakens.length > 0 : null })}\n`,
    );
  } else {
    process.stdout.write(`${summaryLine(document)}\n`);
    if (contract?.some((c) => c.weakens)) process.stdout.write(`WARNING: this change weakens the maintenance contract (see ${values.out}/plan.md)\n`);
    if (infra) process.stdout.write(`Infrastructure: ${infra.add.length} to add, ${infra.change.length} to change, ${infra.replace.length} to replace, ${infra.destroy.length} to destroy\n`);
    process.stdout.write(`Plan written to ${values.out}/ (review ${values.out}/plan.md)\n`);
  }
  return s.hostsChanged > 0 || infraChanges > 0 ? 2 : 0;
}

if (isMain(import.meta.url)) exitWith('bin/plan', runPlan(process.argv.slice(2)));
