// Fuzzing the policy loader and validator with mutated real policies (fuzz-policies.ts). Whatever a
// YAML file holds, upkeep must either plan it or refuse it the documented way: a PolicyError whose
// every issue names the file, the line and column, and the policy path; never a TypeError, never a
// stack trace, never a file written. Checked in-process (loadPolicy + prepareFleet, many cases)
// and through the real bin/plan (fewer cases: a process each).
//
// Reproducible by default (a fixed seed). Environment:
//   UPKEEP_FUZZ_SEED=<n>|random   the seed (a random one is printed)
//   UPKEEP_FUZZ_RUNS=<n>          in-process cases (default 300); bin/plan runs 1 per 50 of them, at least 6
//   UPKEEP_FUZZ_PROCESS_RUNS=<n>  bin/plan cases, overriding the above
//   UPKEEP_FUZZ_PATH=<path>       replay the failure fast-check reported (with its seed)
// The defaults take about 15 s; `npm run fuzz` is the long run (10,000 cases, a random seed).

import fc from 'fast-check';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseDocument } from 'yaml';
import { formatPath, PolicyError } from '../../lib/policy/errors.ts';
import { loadPolicy } from '../../lib/policy/load.ts';
import { prepareFleet } from '../../lib/policy/prepare.ts';
import { fuzzCase, type FuzzCase } from './fuzz-policies.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'upkeep-fuzz-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let warnings = 0;
// yaml reports some oddities (a list as a mapping key) with process.emitWarning: counted, not shown.
beforeAll(() => {
  vi.spyOn(process, 'emitWarning').mockImplementation(() => {
    warnings++;
  });
});
afterAll(() => vi.restoreAllMocks());

function envNumber(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a whole number, got ${JSON.stringify(text)}`);
  return n;
}

const SEED = process.env.UPKEEP_FUZZ_SEED === 'random' ? (Date.now() ^ (Math.random() * 0x7fffffff)) | 0 : envNumber('UPKEEP_FUZZ_SEED', 20260117);
const RUNS = envNumber('UPKEEP_FUZZ_RUNS', 300);
const PROCESS_RUNS = envNumber('UPKEEP_FUZZ_PROCESS_RUNS', Math.max(6, Math.ceil(RUNS / 50)));
const REPLAY = process.env.UPKEEP_FUZZ_PATH ? { path: process.env.UPKEEP_FUZZ_PATH } : {};
/** A policy that takes longer than this to load and validate is a denial of service on the CI runner. */
const CASE_LIMIT_MS = 10_000;
/** Secret values in the environment of bin/plan: they must not appear anywhere in its output. */
const CANARY = 'canary-fuzz-secret-4d1c8e';

/** Failing inputs are kept here, for a look and for new fixtures in test/fixtures/bad. */
const kept = join(tmpdir(), 'upkeep-fuzz-failures');
function keep(c: FuzzCase): string {
  mkdirSync(kept, { recursive: true });
  const file = join(kept, `${createHash('sha256').update(c.content).digest('hex').slice(0, 12)}-${c.file}`);
  writeFileSync(file, c.content);
  return file;
}

function fail(c: FuzzCase, problem: string): never {
  throw new Error(`${problem}\n(input kept as ${keep(c)})`);
}

/** A file of nothing but comments and blank lines has no line to point at; the file and "(fleet)" must do. */
function isEmptyDocument(text: string): boolean {
  return parseDocument(text).contents === null;
}

/** A directory holding only the policy: a case's own place, so anything written is seen. */
function caseDir(c: FuzzCase): { dir: string; file: string } {
  const dir = mkdtempSync(join(work, 'case-'));
  writeFileSync(join(dir, c.file), c.content);
  return { dir, file: join(dir, c.file) };
}

function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, prefix: string) => {
    for (const name of readdirSync(d).sort()) {
      out.push(prefix + name);
      if (statSync(join(d, name)).isDirectory()) walk(join(d, name), `${prefix}${name}/`);
    }
  };
  walk(dir, '');
  return out;
}

type Outcome = 'plan' | 'syntax' | 'shape' | 'rules';
const tally: Record<Outcome, number> = { plan: 0, syntax: 0, shape: 0, rules: 0 };
let slowest = 0;

/**
 * Loads and validates `c` in this process. Returns what came of it, or throws (the property fails)
 * when anything but a located PolicyError was thrown.
 */
async function inProcess(c: FuzzCase): Promise<Outcome> {
  const { dir, file } = caseDir(c);
  const text = Buffer.from(c.content).toString('utf8');
  const started = performance.now();
  let stage: Outcome = 'shape';
  let error: unknown;
  try {
    const { spec, source } = await loadPolicy(file);
    stage = 'rules';
    prepareFleet(spec, source);
    stage = 'plan';
  } catch (e) {
    error = e;
  }
  const took = performance.now() - started;
  slowest = Math.max(slowest, took);
  const left = listing(dir);
  rmSync(dir, { recursive: true, force: true });

  if (took > CASE_LIMIT_MS) fail(c, `loading and validating took ${Math.round(took)} ms`);
  if (left.join() !== c.file) fail(c, `the policy's directory holds ${JSON.stringify(left)} afterwards: something was written`);
  if (stage === 'plan') return 'plan';
  if (!(error instanceof PolicyError)) {
    fail(c, `expected a PolicyError, got ${error instanceof Error ? `${error.name}: ${error.message}\n${error.stack}` : String(error)}`);
  }
  const problems: string[] = [];
  if (error.issues.length === 0) problems.push('a PolicyError without issues');
  if (error.source?.file !== file) problems.push(`the error names ${JSON.stringify(error.source?.file)}, not the policy file`);
  const empty = isEmptyDocument(text);
  for (const issue of error.issues) {
    const said = JSON.stringify(issue);
    if (!Array.isArray(issue.path) || !issue.path.every((p) => typeof p === 'string' || typeof p === 'number')) problems.push(`a bad policy path: ${said}`);
    if (typeof issue.message !== 'string' || issue.message.trim() === '') problems.push(`an empty message: ${said}`);
    // A message is one line: a newline in it could forge a line of the report.
    else if (issue.message.includes('\n')) problems.push(`a message of several lines: ${said}`);
    const where = error.source?.locate(issue.path);
    if (!where && !empty) problems.push(`an issue without a line and column: ${said}`);
    if (where && !(Number.isInteger(where.line) && where.line >= 1 && Number.isInteger(where.column) && where.column >= 1)) problems.push(`a bad location ${JSON.stringify(where)}: ${said}`);
    const line = `${file}${where ? `:${where.line}:${where.column}` : ''}: ${formatPath(issue.path)}: ${issue.message}`;
    if (!error.message.includes(line)) problems.push(`the message does not say ${JSON.stringify(line)}`);
  }
  if (problems.length > 0) fail(c, `${problems.slice(0, 10).join('\n')}\n--- the error ---\n${error.message.slice(0, 4000)}`);
  const syntax = error.issues.every((i) => /^(YAML syntax error|YAML error|duplicate key)/.test(i.message));
  return syntax ? 'syntax' : stage;
}

interface PlanRun {
  readonly code: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runPlan(dir: string, file: string): Promise<PlanRun> {
  // No tofu/terraform on PATH: a fuzzed policy must not reach a real engine (or the network).
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, UPKEEP_TERRAFORM: '', NO_COLOR: '1' };
  for (const name of ['RESTIC_PASSWORD', 'UPKEEP_RESTIC_PASSWORD', 'UPKEEP_ALERT_TOKEN', 'ALERT_TOKEN', 'HCLOUD_TOKEN']) env[name] = CANARY;
  return new Promise((resolve) => {
    execFile(join(root, 'bin/plan'), [file, '--out', 'out'], { cwd: dir, env, maxBuffer: 64 << 20, timeout: 120_000 }, (error, stdout, stderr) => {
      const e = error as (Error & { code?: number | string; signal?: string | null }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr });
    });
  });
}

let processes = 0;
let nodeWarnings = 0;

/** Runs `c` through bin/plan and checks the process against the in-process outcome. */
async function throughBinPlan(c: FuzzCase): Promise<void> {
  const expected = await inProcess(c);
  const { dir } = caseDir(c);
  const run = await runPlan(dir, c.file);
  processes++;
  const left = listing(dir);
  const out = join(dir, 'out');
  const written = existsSync(out) ? listing(out).map((f) => join(out, f)).filter((f) => statSync(f).isFile()) : [];
  const leaked = [run.stdout, run.stderr, ...written.map((f) => readFileSync(f, 'latin1'))].some((t) => t.includes(CANARY));
  rmSync(dir, { recursive: true, force: true });

  const report = () => `exit ${run.code ?? run.signal}; in-process: ${expected}\n--- stderr ---\n${run.stderr.slice(0, 4000)}\n--- stdout ---\n${run.stdout.slice(0, 1000)}`;
  const lines = run.stderr.split('\n').filter((l) => l !== '');
  // Node's own warnings (yaml warns about a list used as a mapping key) are not stack traces.
  const nodeWarning = (l: string) => /^\(node:\d+\) \w*Warning: /.test(l) || l.startsWith('(Use `node --trace-warnings');
  nodeWarnings += lines.filter((l) => l.startsWith('(node:')).length;
  if (lines.some((l) => /^\s+at /.test(l))) fail(c, `bin/plan printed a stack trace: ${report()}`);
  if (leaked) fail(c, `a secret value from the environment appears in bin/plan's output: ${report()}`);

  if (expected === 'plan') {
    if (run.code !== 0 && run.code !== 2) fail(c, `the policy validates, but bin/plan did not plan it (a crash after validation: compile or plan): ${report()}`);
    if (!left.includes('out/plan.json')) fail(c, `exit ${run.code} without out/plan.json: ${report()}`);
    return;
  }
  if (run.code !== 1) fail(c, `expected exit code 1 for a policy that does not validate: ${report()}`);
  if (run.stdout !== '') fail(c, `bin/plan printed on stdout while failing: ${report()}`);
  if (left.join() !== c.file) fail(c, `bin/plan failed but wrote ${JSON.stringify(left)}: ${report()}`);
  // Every line: the error, or one issue of several, each naming file:line:col and the policy path.
  const empty = isEmptyDocument(Buffer.from(c.content).toString('utf8'));
  const file = c.file.replace(/\./g, '\\.');
  const located = new RegExp(`^(bin/plan: |  - )${file}(:\\d+:\\d+)${empty ? '?' : ''}: \\S`);
  const bad = lines.filter((l) => !nodeWarning(l) && !located.test(l) && !/^bin\/plan: \d+ problems in the policy:$/.test(l));
  if (bad.length > 0 || !lines.some((l) => located.test(l))) fail(c, `not every line of the error is located (file:line:col: path: message): ${JSON.stringify(bad)}\n${report()}`);
}

describe('fuzzing the policy loader and validator', () => {
  it(`plans or refuses ${RUNS} mutated policies in-process with a located PolicyError (seed ${SEED})`, { timeout: 60_000 + RUNS * 200 }, async () => {
    const started = performance.now();
    await fc.assert(
      fc.asyncProperty(fuzzCase, async (c) => {
        tally[await inProcess(c)]++;
      }),
      { seed: SEED, numRuns: RUNS, ...REPLAY },
    );
    const total = Object.values(tally).reduce((a, b) => a + b, 0);
    console.log(
      `fuzz: ${total} policies in-process in ${((performance.now() - started) / 1000).toFixed(1)} s (seed ${SEED}): ` +
        `${tally.plan} planned, ${tally.syntax} YAML errors, ${tally.shape} shape errors, ${tally.rules} validation errors; ` +
        `slowest ${Math.round(slowest)} ms; ${warnings} Node warning(s)`,
    );
    // A generator that only ever made syntax errors would prove nothing about the later stages.
    if (RUNS >= 100 && !REPLAY.path) expect(Math.min(tally.plan, tally.shape, tally.rules)).toBeGreaterThan(0);
  });

  it(`runs ${PROCESS_RUNS} mutated policies through bin/plan: a plan, or exit 1 with located messages and nothing written`, { timeout: 60_000 + PROCESS_RUNS * 4_000 }, async () => {
    const started = performance.now();
    // Two at a time: each bin/plan is a node process of about a second.
    await fc.assert(
      fc.asyncProperty(fuzzCase, fuzzCase, async (a, b) => {
        await Promise.all([throughBinPlan(a), throughBinPlan(b)]);
      }),
      { seed: SEED, numRuns: Math.ceil(PROCESS_RUNS / 2), ...REPLAY },
    );
    console.log(`fuzz: ${processes} bin/plan runs in ${((performance.now() - started) / 1000).toFixed(1)} s (seed ${SEED}); ${nodeWarnings} Node warning line(s)`);
  });
});
