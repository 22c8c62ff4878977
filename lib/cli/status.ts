// `upkeep status PLAN_DIR`: the evidence that the maintenance contract is kept. Reads every host of
// the plan (one ssh round trip each), judges what they recorded against the policy the plan was
// made from, and prints a report: markdown (default), JSON (--json) and a static HTML page (--html).
// Exit codes: 0 every host keeps the contract, 2 some host is out of contract (or unreachable), 1 error.

import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { readPlanFacts } from '../hosts/host-facts.ts';
import { readPlanDir } from '../plan/plan-dir.ts';
import { tryParseDuration } from '../policy/duration.ts';
import { loadPolicy } from '../policy/load.ts';
import { prepareFleet } from '../policy/prepare.ts';
import { renderStatusHtml } from '../status/status-html.ts';
import { renderStatusMarkdown } from '../status/status-markdown.ts';
import { buildStatusReport } from '../status/status-report.ts';
import { exitWith, isMain } from './run-command.ts';

const HELP = `Usage: upkeep status PLAN_DIR [options]

Reads every host of the plan over ssh (one round trip each, read-only) and reports whether each
keeps the maintenance contract: updates (last routine run inside the window, security fixes
pending against the deadline, reboot pending), backups (last snapshot, repository check, restore
drill), monitoring (each check's state and since when, alerts sent, time to alert against the
SLA) and the plan generation the host is on.

PLAN_DIR              the plan directory the hosts should be on (the last one applied)
  --policy FILE       the policy to judge against (default: the policy plan.json names,
                      relative to the current directory, as bin/apply reads it)
  --identity FILE     ssh private key
  --known-hosts FILE  your known_hosts (default: the host keys pinned in the policy)
  --terraform-outputs FILE
                      \`terraform output -json\` for provisioned hosts
  --period DURATION   count alerts over this period (default: 7d)
  --json              print the report as JSON (format_version 1; fields in the README)
  --html FILE         also write the report as a self-contained HTML page
  -h, --help          this text

Exit codes: 0 every host keeps the contract, 2 some host is out of contract or unreachable,
1 error.
`;

/** Runs `upkeep status` with `argv`; resolves to its exit code. */
export async function runStatus(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      policy: { type: 'string' },
      identity: { type: 'string' },
      'known-hosts': { type: 'string' },
      'terraform-outputs': { type: 'string' },
      period: { type: 'string', default: '7d' },
      json: { type: 'boolean', default: false },
      html: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new Error(`expected one plan directory, got ${positionals.length} (see upkeep status --help)`);
  const periodSeconds = tryParseDuration(values.period);
  if (periodSeconds === undefined) throw new Error(`--period ${JSON.stringify(values.period)} is not a duration such as 24h or 7d`);
  const { document: plan } = await readPlanDir(positionals[0]!);
  const policyFile = values.policy ?? plan.policy;
  const { spec, source } = await loadPolicy(policyFile);
  const fleet = prepareFleet(spec, source);
  if (fleet.name !== plan.fleet) throw new Error(`${policyFile} is the policy of fleet ${JSON.stringify(fleet.name)}, the plan is of fleet ${JSON.stringify(plan.fleet)}`);

  const facts = await readPlanFacts(plan, {
    ...(values.identity && { identity: values.identity }),
    ...(values['known-hosts'] && { knownHosts: values['known-hosts'] }),
    ...(values['terraform-outputs'] && { terraformOutputs: values['terraform-outputs'] }),
  });
  const report = buildStatusReport({ fleet, plan, facts, now: Math.floor(Date.now() / 1000), periodSeconds });
  if (values.html) await writeFile(values.html, renderStatusHtml(report));
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : renderStatusMarkdown(report));
  return report.in_contract ? 0 : 2;
}

if (isMain(import.meta.url)) exitWith('upkeep status', runStatus(process.argv.slice(2)));
