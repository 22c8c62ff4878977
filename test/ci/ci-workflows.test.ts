// The example pipelines (examples/ci) are valid for the CI systems that run them: GitHub Actions
// workflows by @action-validator/core (SchemaStore's workflow schema), GitLab CI by GitLab's own
// schema (vendored in test/ci/schemas, validated with ajv as gitlab-ci-local does); every shell
// line they run passes shellcheck; the scripts they call exist; and they keep the promises the
// README makes: apply only the reviewed plan id, one run that changes hosts at a time.

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { tryParseDuration } from '../../lib/policy/duration.ts';
import { stagingLayer } from '../../policies/standard.ts';
import { programsAvailable } from '../programs.ts';

const CI = join(import.meta.dirname, '..', '..', 'examples', 'ci');
const GITHUB = join(CI, 'github');
const GITLAB_FILE = join(CI, 'gitlab', '.gitlab-ci.yml');

const { validateWorkflow } = createRequire(import.meta.url)('@action-validator/core') as { validateWorkflow(src: string): { errors: unknown[] } };

function gitlabValidator() {
  // The options gitlab-ci-local validates with (src/validator.js).
  const ajv = new Ajv({ verbose: true, allErrors: true, allowUnionTypes: true, validateFormats: false, strictTypes: false, keywords: ['markdownDescription'] });
  return ajv.compile(JSON.parse(readFileSync(join(import.meta.dirname, 'schemas', 'gitlab-ci.json'), 'utf8')));
}

type Workflow = { on: unknown; concurrency?: { group: string; 'cancel-in-progress': boolean }; jobs: Record<string, { steps: { run?: string; uses?: string }[] }> };
type GitlabJob = { script?: string[]; before_script?: string[]; after_script?: string[]; resource_group?: string; rules?: { if: string }[]; timeout?: string };

const workflowFiles = readdirSync(GITHUB).filter((f) => f.endsWith('.yml')).sort();
const workflow = (file: string) => parse(readFileSync(join(GITHUB, file), 'utf8')) as Workflow;
const gitlab = () => parse(readFileSync(GITLAB_FILE, 'utf8')) as Record<string, GitlabJob> & { default: GitlabJob };

/** shellcheck findings for `script` run by `shell`; ${{ }} expressions stand in as a word. */
function shellcheck(script: string, shell: 'bash' | 'sh'): string {
  const r = spawnSync('shellcheck', [`--shell=${shell}`, '--severity=style', '-'], { input: script.replace(/\$\{\{[^}]*\}\}/g, 'EXPR'), encoding: 'utf8' });
  return r.stdout + r.stderr;
}

describe('the example GitHub Actions workflows', () => {
  it('are the five pipelines the README describes', () => {
    expect(workflowFiles).toEqual(['upkeep-apply.yml', 'upkeep-drift.yml', 'upkeep-plan.yml', 'upkeep-security-updates.yml', 'upkeep-status.yml']);
  });

  for (const file of workflowFiles) {
    it(`${file} is a valid workflow`, () => {
      expect(validateWorkflow(readFileSync(join(GITHUB, file), 'utf8')).errors).toEqual([]);
    });
  }

  it('the validator refuses a workflow with a misspelt key (it can fail)', () => {
    const text = readFileSync(join(GITHUB, 'upkeep-plan.yml'), 'utf8').replace('runs-on:', 'runs_on:');
    expect(validateWorkflow(text).errors).not.toEqual([]);
  });

  it.skipIf(!programsAvailable('test/ci/ci-workflows.test.ts', ['shellcheck']))('run only shell that passes shellcheck (bash, as GitHub runs it)', () => {
    for (const file of workflowFiles) {
      for (const [job, { steps }] of Object.entries(workflow(file).jobs)) {
        steps.forEach((step, i) => {
          if (step.run !== undefined) expect(shellcheck(step.run, 'bash'), `${file} ${job} step ${i + 1}`).toBe('');
        });
      }
    }
  });

  it('apply on merge exactly the plan id reviewed on the pull request, one host-changing run at a time', () => {
    const apply = workflow('upkeep-apply.yml');
    const runs = apply.jobs.apply!.steps.map((s) => s.run ?? '').join('\n');
    expect(runs).toContain('reviewed-plan-id.sh" github "$GITHUB_SHA"');
    expect(runs).toContain('npx upkeep apply out/plan --plan-id "$PLAN_ID"');
    const plan = workflow('upkeep-plan.yml').jobs.plan!.steps.map((s) => s.run ?? '').join('\n');
    expect(plan).toContain('echo "<!-- upkeep-plan-id: $id -->"');
    for (const file of ['upkeep-apply.yml', 'upkeep-security-updates.yml']) expect(workflow(file).concurrency).toEqual({ group: 'upkeep-hosts', 'cancel-in-progress': false });
    expect(workflow('upkeep-security-updates.yml').jobs.security!.steps.map((s) => s.run ?? '').join('\n')).toContain('npx upkeep update security out/plan');
  });
});

describe('the example GitLab CI pipeline', () => {
  it('is valid for GitLab\'s own schema', () => {
    const validate = gitlabValidator();
    expect(validate(gitlab()), JSON.stringify(validate.errors, null, 2)).toBe(true);
  });

  it('the schema refuses a misspelt key and a script line YAML made a mapping (it can fail)', () => {
    const validate = gitlabValidator();
    const text = readFileSync(GITLAB_FILE, 'utf8');
    expect(validate(parse(text.replace('resource_group: upkeep-hosts', 'resource_grop: upkeep-hosts')))).toBe(false);
    // The mistake the schema caught while writing the example: an unquoted "<!-- upkeep-plan: ..." line.
    const line = `sh "$CI_SCRIPTS/sticky-comment.sh" gitlab "$CI_MERGE_REQUEST_IID" "<!-- upkeep-plan: $FLEET -->" comment.md`;
    expect(text).toContain(`- '${line}'\n`);
    expect(validate(parse(text.replace(`- '${line}'\n`, `- ${line}\n`)))).toBe(false);
  });

  it.skipIf(!programsAvailable('test/ci/ci-workflows.test.ts', ['shellcheck']))('runs only shell that passes shellcheck (sh)', () => {
    for (const [name, job] of Object.entries(gitlab())) {
      for (const lines of [[...(job.before_script ?? []), ...(job.script ?? [])], job.after_script ?? []]) {
        if (lines.length > 0) expect(shellcheck(lines.join('\n'), 'sh'), name).toBe('');
      }
    }
  });

  it('applies on merge only the reviewed plan id; jobs that change hosts share one resource group', () => {
    const ci = gitlab();
    expect(ci.apply!.script!.join('\n')).toMatch(/id=\$\(sh "\$CI_SCRIPTS\/reviewed-plan-id\.sh" gitlab "\$CI_COMMIT_SHA"[^\n]*\n[^\n]*\nnpx upkeep apply out\/plan --plan-id "\$id"/);
    expect([ci.apply!.resource_group, ci['security-updates']!.resource_group]).toEqual(['upkeep-hosts', 'upkeep-hosts']);
    expect(ci.plan!.rules).toEqual([{ if: '$CI_PIPELINE_SOURCE == "merge_request_event"' }]);
  });
});

describe('the apply jobs', () => {
  const soak = tryParseDuration(stagingLayer().soak) as number;

  it("outlast the standard staging layer's soak, so that a CI timeout does not cut every rollout short", () => {
    type Job = { 'timeout-minutes': number; steps: { run?: string; if?: string }[] };
    const github = (workflow('upkeep-apply.yml').jobs as unknown as Record<string, Job>).apply!;
    expect(github['timeout-minutes'] * 60).toBeGreaterThan(soak + 3600);
    expect(tryParseDuration(gitlab().apply!.timeout) as number).toBeGreaterThan(soak + 3600);
  });

  it('commit the host keys bin/apply rotated, after a failed apply too: the next clean checkout needs them', () => {
    type Job = { steps: { run?: string; if?: string }[] };
    const steps = (workflow('upkeep-apply.yml').jobs as unknown as Record<string, Job>).apply!.steps;
    const at = steps.findIndex((s) => s.run?.includes('commit-host-keys.sh" upkeep-host-keys.json main'));
    expect(at).toBeGreaterThan(steps.findIndex((s) => s.run?.includes('npx upkeep apply')));
    expect(steps[at]!.if).toBe('always()');
    expect(workflow('upkeep-apply.yml')).toMatchObject({ permissions: { contents: 'write' } });
    expect(gitlab().apply!.after_script!.join('\n')).toContain('commit-host-keys.sh" upkeep-host-keys.json "$CI_DEFAULT_BRANCH"');
  });
});

describe('the scripts the pipelines call', () => {
  it('all exist in examples/ci/scripts', () => {
    const texts = [...workflowFiles.map((f) => readFileSync(join(GITHUB, f), 'utf8')), readFileSync(GITLAB_FILE, 'utf8')];
    const called = [...new Set(texts.flatMap((t) => [...t.matchAll(/\$CI_SCRIPTS\/([a-z-]+\.sh)/g)].map((m) => m[1]!)))].sort();
    expect(called).toEqual(['commit-host-keys.sh', 'drift-issue.sh', 'reviewed-plan-id.sh', 'sticky-comment.sh']);
    for (const script of called) expect(existsSync(join(CI, 'scripts', script)), script).toBe(true);
  });
});
