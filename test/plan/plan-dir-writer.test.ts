// The streaming plan writer (what bin/plan does: each host's contents written as it is compiled)
// against the whole-fleet path (compileFleet + buildPlan + writePlanDir): the same directory, byte
// for byte; a write that fails leaves the old directory as it was and no temporary behind; and
// what a killed plan left behind is cleared up by the next one.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import hosting from '../../examples/hosting/fleet.ts';
import { compileFleet, compileFleetPlanned } from '../../lib/compile/fleet.ts';
import { sha256 } from '../../lib/compile/generation.ts';
import { buildPlan } from '../../lib/plan/build-plan.ts';
import type { PlanDocument } from '../../lib/plan/plan-format.ts';
import { renderPlanMarkdown } from '../../lib/plan/markdown.ts';
import { PlanDirWriter, objectPath, writePlanDir } from '../../lib/plan/plan-dir.ts';
import { prepareFleet } from '../../lib/policy/prepare.ts';
import { generatedFleet } from '../fixtures/generated-fleet.ts';

const work = mkdtempSync(join(tmpdir(), 'upkeep-plan-writer-'));
afterAll(() => rmSync(work, { recursive: true, force: true }), 60_000);

const metadata = { created_at: '2026-01-01T00:00:00.000Z', upkeep_version: 'test' };

function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = readFileSync(p, 'utf8');
    }
  };
  walk(dir);
  return out;
}

async function whole(fleet: ReturnType<typeof prepareFleet>, out: string): Promise<void> {
  const compiled = compileFleet(fleet);
  const { document, objects } = buildPlan({ fleet, hosts: compiled.hosts, base: new Map(), policy: 'fleet.ts', metadata });
  await writePlanDir(out, { document, markdown: renderPlanMarkdown(document), objects, ...(compiled.terraform && { terraform: compiled.terraform }) });
}

async function streamed(fleet: ReturnType<typeof prepareFleet>, out: string): Promise<{ waits: number }> {
  // A short queue: compiling waits for room again and again, as it does for a large fleet.
  const writer = await PlanDirWriter.open(out, { queueLimit: 8 });
  let waits = 0;
  const compiled = await compileFleetPlanned(
    fleet,
    (hash, content) => writer.object(hash, content),
    async () => {
      if (writer.queued >= 8) waits++;
      await writer.room();
      expect(writer.queued).toBeLessThan(8);
    },
  );
  const { document } = buildPlan({ fleet, hosts: compiled.hosts, base: new Map(), policy: 'fleet.ts', metadata });
  await writer.finish({ document, markdown: renderPlanMarkdown(document), ...(compiled.terraform && { terraform: compiled.terraform }) });
  return { waits };
}

describe('PlanDirWriter', () => {
  it.each([
    ['the hosting example', () => prepareFleet(hosting)],
    ['a generated fleet of 40 hosts', () => prepareFleet(generatedFleet(40))],
  ])('writes %s as the whole-fleet path does, byte for byte', async (_name, fleet) => {
    const a = join(work, `whole-${_name.length}`);
    const b = join(work, `streamed-${_name.length}`);
    await whole(fleet(), a);
    const { waits } = await streamed(fleet(), b);
    expect(waits).toBeGreaterThan(0);
    const [expected, actual] = [tree(a), tree(b)];
    expect(Object.keys(actual)).toEqual(Object.keys(expected));
    for (const [path, text] of Object.entries(expected)) expect(actual[path], path).toBe(text);
    // And the directory is whole on its own: every content plan.json names is there under its hash, nothing else.
    const document = JSON.parse(actual['plan.json']!) as PlanDocument;
    const named = new Set(Object.values(document.hosts).flatMap((h) => h.files.flatMap((f) => (f.sha256 ? [f.sha256] : []))));
    expect(Object.keys(actual).filter((p) => p.startsWith('objects/'))).toEqual([...named].map(objectPath).sort());
    for (const hash of named) expect(sha256(actual[objectPath(hash)]!)).toBe(hash);
    expect(named.size).toBeGreaterThan(10);
  });

  it('writes each content once however often it is handed over', async () => {
    const out = join(work, 'once');
    const writer = await PlanDirWriter.open(out);
    const hash = 'a'.repeat(64);
    for (let i = 0; i < 5; i++) writer.object(hash, 'same');
    writer.object('b'.repeat(64), 'other');
    await writer.finish({ document: { format_version: 3 } as never, markdown: '' });
    expect(tree(out)).toEqual({ [objectPath(hash)]: 'same', [objectPath('b'.repeat(64))]: 'other', 'plan.json': '{\n  "format_version": 3\n}\n', 'plan.md': '' });
  });

  it('a write that fails (a directory where the file goes) fails finish, keeps the old plan directory and removes the temporary one', async () => {
    const out = join(work, 'kept2');
    await whole(prepareFleet(hosting), out);
    const before = tree(out);
    const writer = await PlanDirWriter.open(out);
    const tmp = readdirSync(work).find((n) => n.startsWith('.kept2.tmp-'))!;
    // plan.md cannot be written: a directory of that name is in the way.
    mkdirSync(join(work, tmp, 'plan.md'));
    writeFileSync(join(work, tmp, 'plan.md', 'blocker'), '');
    writer.object('d'.repeat(64), 'x');
    await expect(writer.finish({ document: { format_version: 3 } as never, markdown: 'new' })).rejects.toThrow(/EISDIR/);
    expect(tree(out)).toEqual(before);
    expect(readdirSync(work).filter((n) => n.startsWith('.kept2.tmp-'))).toEqual([]);
  });

  describe('after a plan was killed', () => {
    /** A process id that was just in use and is not any more. */
    const deadPid = () => spawnSync('true').pid!;
    const temporaries = (name: string) => readdirSync(work).filter((n) => n.startsWith(`.${name}.tmp-`)).sort();

    it("removes a killed plan's temporary directories, and leaves a running plan's alone", async () => {
      const out = join(work, 'killed');
      await whole(prepareFleet(hosting), out);
      const before = tree(out);
      const dead = deadPid();
      const running = spawn('sleep', ['60']);
      try {
        for (const name of [`.killed.tmp-${dead}`, `.killed.tmp-${dead}.old`, `.killed.tmp-${running.pid}`]) {
          mkdirSync(join(work, name, 'objects'), { recursive: true });
          writeFileSync(join(work, name, 'plan.json'), '{}');
        }
        const writer = await PlanDirWriter.open(out);
        expect(temporaries('killed')).toEqual([`.killed.tmp-${process.pid}`, `.killed.tmp-${running.pid}`].sort());
        await writer.abandon();
        expect(tree(out)).toEqual(before);
      } finally {
        running.kill();
      }
    });

    it('moves the old plan directory back when the plan was killed between moving it aside and moving the new one in', async () => {
      const out = join(work, 'between');
      await whole(prepareFleet(hosting), out);
      const before = tree(out);
      const dead = deadPid();
      // Where finish() had got to: the old directory aside, the new one not yet in place.
      renameSync(out, join(work, `.between.tmp-${dead}.old`));
      mkdirSync(join(work, `.between.tmp-${dead}`));
      expect(existsSync(out)).toBe(false);
      const writer = await PlanDirWriter.open(out);
      expect(tree(out)).toEqual(before);
      await writer.abandon();
      expect(tree(out)).toEqual(before);
      expect(temporaries('between')).toEqual([]);
    });

    it("replaces a plan directory that holds the temporary file of a killed calendar or journal write", async () => {
      const out = join(work, 'calendar-temp');
      await whole(prepareFleet(hosting), out);
      writeFileSync(join(out, '.calendar.ics.tmp-4242'), 'half');
      writeFileSync(join(out, 'apply-journal.json.tmp-4242'), 'half');
      await whole(prepareFleet(hosting), out);
      expect(readdirSync(out).filter((n) => n.includes('.tmp-'))).toEqual([]);
    });
  });
});
