// The bad-input corpus: every file in test/fixtures/bad is a policy with one mistake. Each runs
// through the whole pipeline, the real bin/plan, as an operator would run it: the plan must fail
// with exit code 1, say what is wrong and where, and write nothing.
//
// A case file starts with comment lines:
//   # expect: <part of the message>
//   # expect-line: <line the message points at>      (optional)
//   # expect-path: <policy path the message names>   (optional)

import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const corpus = 'test/fixtures/bad';

interface Case {
  readonly file: string;
  readonly expect: string;
  readonly line?: number;
  readonly path?: string;
}

function readCase(name: string): Case {
  const header = new Map<string, string>();
  for (const line of readFileSync(join(root, corpus, name), 'utf8').split('\n')) {
    const m = /^# (expect(?:-line|-path)?): (.*)$/.exec(line);
    if (!m) break;
    header.set(m[1], m[2]);
  }
  const expected = header.get('expect');
  if (expected === undefined) throw new Error(`${corpus}/${name} does not start with "# expect: <message>"`);
  const line = header.get('expect-line');
  const path = header.get('expect-path');
  return { file: `${corpus}/${name}`, expect: expected, ...(line !== undefined && { line: Number(line) }), ...(path !== undefined && { path }) };
}

interface Run {
  readonly code: number;
  readonly stderr: string;
  readonly outExists: boolean;
}

function plan(file: string): Promise<Run> {
  const out = join(mkdtempSync(join(tmpdir(), 'upkeep-bad-')), 'out');
  return new Promise((resolve) => {
    execFile(join(root, 'bin/plan'), [file, '--out', out], { cwd: root, env: { ...process.env, NO_COLOR: '1' } }, (error, _stdout, stderr) => {
      resolve({ code: error ? Number(error.code) : 0, stderr, outExists: existsSync(out) });
    });
  });
}

const cases = readdirSync(join(root, corpus)).filter((f) => f.endsWith('.yaml')).sort().map(readCase);

// Each case is a full bin/plan process (a few seconds of CPU); running them all at once would
// starve the machine, so at most two run at a time, in file order, started by the first test.
const PARALLEL = 2;
let free = PARALLEL;
const waiting: (() => void)[] = [];
async function limited<T>(task: () => Promise<T>): Promise<T> {
  while (free === 0) await new Promise<void>((wake) => waiting.push(wake));
  free--;
  try {
    return await task();
  } finally {
    free++;
    waiting.shift()?.();
  }
}
const runs = new Map<Case, Promise<Run>>();
function runOf(c: Case): Promise<Run> {
  if (runs.size === 0) for (const each of cases) runs.set(each, limited(() => plan(each.file)));
  return runs.get(c)!;
}

describe('the bad-input corpus', () => {
  it('covers at least 36 mistakes', () => {
    expect(cases.length).toBeGreaterThanOrEqual(36);
  });

  describe.each(cases)('$file', (c) => {
    it(`fails with exit code 1, says "${c.expect}" where the mistake is, and writes nothing`, { timeout: 120_000 }, async () => {
      const { code, stderr, outExists } = await runOf(c);
      const where = `${c.file}${c.line === undefined ? '' : `:${c.line}:`}`;
      const said = stderr.split('\n').some((l) => l.includes(c.expect) && l.includes(where) && (c.path === undefined || l.includes(`: ${c.path}: `)));
      expect({ code, said, stderr }).toEqual({ code: 1, said: true, stderr: expect.any(String) });
      expect(outExists).toBe(false);
    });
  });
});
