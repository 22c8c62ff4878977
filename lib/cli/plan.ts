// bin/plan: load, validate and compile a policy; write the plan directory for review.
// Exit codes: 0 no changes against the base, 2 changes, 1 error (as terraform plan -detailed-exitcode).

import { existsSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { compileFleet } from '../compile/fleet.ts';
import { PolicyError } from '../policy/errors.ts';
import { loadPolicy } from '../policy/load.ts';
import { prepareFleet } from '../policy/prepare.ts';
import { buildPlan, type BaseHost } from '../plan/build-plan.ts';
import { diffInfra, renderInfraSection } from '../plan/infra-diff.ts';
import { renderPlanMarkdown } from '../plan/markdown.ts';
import { readPlanDir, writePlanDir } from '../plan/plan-dir.ts';
import { UPKEEP_VERSION } from '../version.ts';

const HELP = `Usage: bin/plan [POLICY] [options]

Loads a maintenance policy (.ts or .yaml), validates the whole fleet, compiles every host and
writes a reviewable plan directory: plan.json, plan.md, hosts/<host>/... and terraform/.

POLICY             policy file (default: upkeep.ts or upkeep.yaml in the current directory)
  --out DIR        where to write the plan (default: out/plan)
  --base DIR       an earlier plan directory to compare against (default: nothing applied)
  --json           print the summary as JSON on stdout
  -h, --help       this text

Exit codes: 0 no changes, 2 changes present, 1 error (nothing is written on error).
`;

function defaultPolicy(): string {
  const found = ['upkeep.ts', 'upkeep.yaml', 'upkeep.yml'].find((f) => existsSync(f));
  if (!found) throw new Error('no policy given and no upkeep.ts or upkeep.yaml in the current directory (see bin/plan --help)');
  return found;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: 'string', default: 'out/plan' },
      base: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length > 1) throw new Error(`expected one policy file, got ${positionals.length} (see bin/plan --help)`);
  const policyFile = positionals[0] ?? defaultPolicy();

  const { spec, source } = await loadPolicy(resolve(policyFile));
  const fleet = prepareFleet(spec, source);
  const compiled = compileFleet(fleet);

  const base = values.base ? await readPlanDir(values.base) : undefined;
  const baseHosts = new Map<string, BaseHost>(
    Object.values(base?.document.hosts ?? {}).map((h) => [h.name, { generation: h.generation, files: h.files, units: h.units, packages: h.packages }]),
  );
  const { document, hostFiles } = buildPlan({
    fleet,
    hosts: compiled.hosts,
    base: baseHosts,
    metadata: { created_at: new Date().toISOString(), upkeep_version: UPKEEP_VERSION, policy: relative(process.cwd(), resolve(policyFile)) },
  });
  const infra = compiled.terraform || base?.terraform ? diffInfra(base?.terraform, compiled.terraform) : undefined;
  const markdown = renderPlanMarkdown(document, infra && renderInfraSection(infra));
  await writePlanDir(values.out, { document, markdown, hostFiles, ...(compiled.terraform && { terraform: compiled.terraform }) });

  const infraChanges = infra ? infra.add.length + infra.change.length + infra.replace.length + infra.destroy.length : 0;
  const s = document.summary;
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ plan_id: document.plan_id, out: values.out, summary: s, infrastructure: infra ?? null })}\n`);
  } else {
    process.stdout.write(`${markdown.split('\n')[2].replace(/\*\*/g, '')}\n`);
    if (infra) process.stdout.write(`Infrastructure: ${infra.add.length} to add, ${infra.change.length} to change, ${infra.replace.length} to replace, ${infra.destroy.length} to destroy\n`);
    process.stdout.write(`Plan written to ${values.out}/ (review ${values.out}/plan.md)\n`);
  }
  return s.hostsChanged > 0 || infraChanges > 0 ? 2 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const message = error instanceof PolicyError || error instanceof Error ? error.message : String(error);
    process.stderr.write(`bin/plan: ${message}\n`);
    process.exit(1);
  },
);
