// The plan directory on disk. Written whole into a sibling temporary directory and renamed into
// place, so a failed or interrupted plan never leaves a half-written directory behind.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { readFile, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { canonicalJson } from '../compile/canonical-json.ts';
import { PLAN_FORMAT_VERSION, type PlanDocument } from './plan-format.ts';

export interface PlanDirContents {
  readonly document: PlanDocument;
  readonly markdown: string;
  /** hosts/<host>/<path> -> content */
  readonly hostFiles: ReadonlyMap<string, string>;
  /** terraform/<name> contents, when the fleet provisions hosts. */
  readonly terraform?: Readonly<Record<string, string>>;
}

/** plan.json as written to disk. */
export function planJsonText(document: PlanDocument): string {
  return `${canonicalJson(document, 2)}\n`;
}

export async function writePlanDir(dir: string, contents: PlanDirContents): Promise<void> {
  const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  try {
    const files = new Map(contents.hostFiles);
    files.set('plan.json', planJsonText(contents.document));
    files.set('plan.md', contents.markdown);
    for (const [name, text] of Object.entries(contents.terraform ?? {})) files.set(`terraform/${name}`, text);
    const dirs = new Set([...files.keys()].map((p) => dirname(join(tmp, p))));
    for (const d of [...dirs].sort()) mkdirSync(d, { recursive: true });
    // Synchronous writes: for tens of thousands of small files, far faster than a promise each.
    for (const [p, text] of files) writeFileSync(join(tmp, p), text);
    const old = `${tmp}.old`;
    if (existsSync(dir)) await rename(dir, old);
    await rename(tmp, dir);
    await rm(old, { recursive: true, force: true });
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw error;
  }
}

/** An earlier plan directory, as a base to plan against. */
export async function readPlanDir(dir: string): Promise<{ document: PlanDocument; terraform?: Record<string, string> }> {
  const file = join(dir, 'plan.json');
  let document: PlanDocument;
  try {
    document = JSON.parse(await readFile(file, 'utf8')) as PlanDocument;
  } catch (error) {
    throw new Error(`${file}: not a readable plan (${(error as Error).message})`);
  }
  if (document.format_version !== PLAN_FORMAT_VERSION) {
    throw new Error(`${file}: plan format ${String(document.format_version)} is not supported by this upkeep (format ${PLAN_FORMAT_VERSION}); re-run bin/plan`);
  }
  const tfDir = join(dir, 'terraform');
  if (!existsSync(tfDir)) return { document };
  const terraform: Record<string, string> = {};
  for (const name of (await readdir(tfDir)).sort()) terraform[name] = await readFile(join(tfDir, name), 'utf8');
  return { document, terraform };
}
