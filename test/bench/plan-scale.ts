// Benchmark: bin/plan's work (load -> resolve -> validate -> compile -> synth -> plan -> write) on
// generated fleets of 100, 1,000 and 10,000 hosts, beside the floor: a bare cdktf synth of the
// same Terraform resources plus writing the same files (paths and sizes) the plan directory holds,
// one synchronous write each. "host files" counts the files the plan delivers to hosts; "written"
// the files of the plan directory (each distinct content once, in objects/).
//
//   npx tsx test/bench/plan-scale.ts                 # all sizes
//   npx tsx test/bench/plan-scale.ts 100 1000        # some sizes
//   npx tsx test/bench/plan-scale.ts --in /dev/shm   # both sides writing to a tmpfs
//
// Each measurement runs in a fresh child process so peak memory (maxRSS) belongs to it alone; each
// side's time is its fastest of three runs up to 1,000 hosts (one above). The machine's load
// (uptime) is printed with the figures: on a shared machine compare the ratio of one run, not
// seconds across runs.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, TerraformResource, TerraformStack } from 'cdktf';
import { generatedFleet } from '../fixtures/generated-fleet.ts';

const here = fileURLToPath(import.meta.url);
const root = join(dirname(here), '..', '..');

interface Measurement {
  seconds: number;
  /** CPU seconds of the process (user + system, every thread): steadier than seconds on a loaded machine. */
  cpuSeconds: number;
  maxRssMiB: number;
  files: number;
  /** Host files the plan delivers (every host's, counted per host). */
  delivered: number;
  bytes: number;
  markdownChars: number;
  resources: number;
}

/** In a child: the whole plan pipeline into `out`. */
async function measureUpkeep(size: number, out: string): Promise<Measurement> {
  const { prepareFleet } = await import('../../lib/policy/prepare.ts');
  const { compileFleetPlanned } = await import('../../lib/compile/fleet.ts');
  const { buildPlan } = await import('../../lib/plan/build-plan.ts');
  const { renderPlanMarkdown } = await import('../../lib/plan/markdown.ts');
  const { objectPath, PlanDirWriter } = await import('../../lib/plan/plan-dir.ts');
  const { limitHeapGrowth } = await import('../../lib/cli/heap-growth.ts');
  limitHeapGrowth();
  const spec = generatedFleet(size);
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  // As bin/plan does it (lib/cli/plan.ts): contents written as the hosts are compiled.
  const fleet = prepareFleet(spec);
  const writer = await PlanDirWriter.open(out);
  const objects = new Map<string, number>();
  let delivered = 0;
  const compiled = await compileFleetPlanned(
    fleet,
    (hash, content) => {
      delivered++;
      if (!objects.has(hash)) objects.set(hash, Buffer.byteLength(content));
      writer.object(hash, content);
    },
    () => writer.room(),
  );
  const { document } = buildPlan({ fleet, hosts: compiled.hosts, base: new Map(), policy: '', metadata: { created_at: '', upkeep_version: '' } });
  const markdown = renderPlanMarkdown(document);
  await writer.finish({ document, markdown, ...(compiled.terraform && { terraform: compiled.terraform }) });
  const seconds = (performance.now() - start) / 1000;
  const cpuSeconds = cpuOf(process.cpuUsage(cpuStart));
  const terraform = compiled.terraform ?? {};
  const resources = Object.values(terraform).reduce((n, text) => n + countResources(text), 0);
  // Every file of the plan directory and its size: the floor writes the same tree.
  const layout: [string, number][] = [
    ...[...objects].map(([hash, bytes]): [string, number] => [objectPath(hash), bytes]),
    ...Object.entries(terraform).map(([name, text]): [string, number] => [`terraform/${name}`, Buffer.byteLength(text)]),
    ['plan.md', Buffer.byteLength(markdown)],
    // Read from disk: serializing the document again here would count in upkeep's peak memory.
    ['plan.json', statSync(join(out, 'plan.json')).size],
  ];
  writeFileSync(join(out, '..', 'shape.json'), JSON.stringify({ terraform, layout }));
  const bytes = layout.reduce((n, [, size]) => n + size, 0);
  return { seconds, cpuSeconds, maxRssMiB: process.resourceUsage().maxRSS / 1024, files: layout.length, delivered, bytes, resources, markdownChars: markdown.length };
}

const cpuOf = (usage: NodeJS.CpuUsage) => (usage.user + usage.system) / 1e6;

function countResources(text: string): number {
  const json = JSON.parse(text) as { resource?: Record<string, Record<string, unknown>> };
  return Object.values(json.resource ?? {}).reduce((n, byName) => n + Object.keys(byName).length, 0);
}

/** In a child: a bare cdktf synth of the same resources, and the same files (paths and sizes) written. */
function measureFloor(shapeFile: string, out: string): Measurement {
  const shape = JSON.parse(readFileSync(shapeFile, 'utf8')) as { terraform: Record<string, string>; layout: [string, number][] };
  mkdirSync(out, { recursive: true });
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  const app = new App({ outdir: join(out, 'cdktf.out'), skipValidation: true });
  const stack = new TerraformStack(app, 'floor');
  let resources = 0;
  for (const text of Object.values(shape.terraform)) {
    const json = JSON.parse(text) as { resource?: Record<string, Record<string, Record<string, unknown>>> };
    for (const [type, byName] of Object.entries(json.resource ?? {})) {
      for (const [id, config] of Object.entries(byName)) {
        const r = new TerraformResource(stack, `${type}_${id}`, { terraformResourceType: type });
        for (const [key, value] of Object.entries(config)) if (key !== '//') r.addOverride(key, value);
        resources++;
      }
    }
  }
  app.synth();
  const made = new Set<string>();
  let bytes = 0;
  for (const [path, size] of shape.layout) {
    const dir = dirname(join(out, 'plan', path));
    if (!made.has(dir)) mkdirSync(dir, { recursive: true }), made.add(dir);
    writeFileSync(join(out, 'plan', path), 'x'.repeat(size));
    bytes += size;
  }
  const seconds = (performance.now() - start) / 1000;
  return { seconds, cpuSeconds: cpuOf(process.cpuUsage(cpuStart)), maxRssMiB: process.resourceUsage().maxRSS / 1024, files: shape.layout.length, delivered: 0, bytes, resources, markdownChars: 0 };
}

async function child(mode: string, size: number, work: string): Promise<void> {
  const m = mode === 'upkeep' ? await measureUpkeep(size, join(work, 'plan')) : measureFloor(join(work, 'shape.json'), join(work, 'floor'));
  process.stdout.write(JSON.stringify(m));
}

function run(mode: string, size: number, work: string): Measurement {
  // Each measurement writes a new directory and starts with no dirty pages or deletions of the one
  // before it still being written back, which would otherwise slow whichever runs next.
  rmSync(join(work, mode === 'upkeep' ? 'plan' : 'floor'), { recursive: true, force: true });
  execFileSync('sync');
  // Node's own heap limit, as bin/plan runs (and upkeep's child sets bin/plan's heap growth): a
  // raised limit lets the heap grow before collecting and so measures garbage not yet collected,
  // not what planning needs.
  const out = execFileSync(join(root, 'node_modules', '.bin', 'tsx'), [here, '--child', mode, String(size), work], { encoding: 'utf8', maxBuffer: 1 << 26 });
  return JSON.parse(out) as Measurement;
}

/** Runs of each side per size: a few where they are quick, one where a run takes minutes. */
const runsOf = (size: number) => (size <= 1000 ? 3 : 1);

/** The fastest run, with the highest peak memory of all of them (memory is not noise). */
function fastest(runs: Measurement[]): Measurement {
  const best = runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  return { ...best, maxRssMiB: Math.max(...runs.map((m) => m.maxRssMiB)) };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child') return child(args[1], Number(args[2]), args[3]);
  // --in DIR: where both sides write, e.g. a tmpfs (/dev/shm) to measure the work without a disk
  // whose speed is not this program's (a virtual machine's disk may be throttled by its host).
  const at = args.indexOf('--in');
  const base = at >= 0 ? args.splice(at, 2)[1]! : tmpdir();
  const sizes = args.length > 0 ? args.map(Number) : [100, 1000, 10000];
  console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} on ${cpus().length} CPUs; writing in ${base}`);
  console.log(`each side's fastest of ${sizes.map((n) => `${runsOf(n)} run${runsOf(n) === 1 ? '' : 's'} at ${n}`).join(', ')}`);
  console.log('hosts   upkeep s  cpu s  hosts/s  peak MiB  host files  written  resources  plan.md | floor s  cpu s  peak MiB | ratio  cpu ratio');
  for (const size of sizes) {
    const work = mkdtempSync(join(base, 'upkeep-bench-'));
    try {
      // The disk of a shared machine answers the same writes in one second or in five: each side
      // keeps its fastest of a few runs, taken in turns, as the time the work itself needs.
      const runs: [Measurement, Measurement][] = [];
      for (let i = 0; i < runsOf(size); i++) runs.push([run('upkeep', size, work), run('floor', size, work)]);
      const u = fastest(runs.map(([upkeep]) => upkeep));
      const f = fastest(runs.map(([, floor]) => floor));
      const ratio = u.seconds / f.seconds;
      console.log(
        `${String(size).padEnd(7)} ${u.seconds.toFixed(2).padStart(8)} ${u.cpuSeconds.toFixed(2).padStart(6)} ${(size / u.seconds).toFixed(0).padStart(8)} ${u.maxRssMiB.toFixed(0).padStart(9)} ${String(u.delivered).padStart(11)} ${String(u.files).padStart(8)} ${String(u.resources).padStart(10)} ${String(u.markdownChars).padStart(8)} | ${f.seconds.toFixed(2).padStart(7)} ${f.cpuSeconds.toFixed(2).padStart(6)} ${f.maxRssMiB.toFixed(0).padStart(9)} | ${ratio.toFixed(2)}x ${(u.cpuSeconds / f.cpuSeconds).toFixed(2).padStart(9)}x`,
      );
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

await main();
