// The plan directory on disk. Written whole into a sibling temporary directory and renamed into
// place, so a failed or interrupted plan never leaves a half-written directory behind. The
// directory it replaces is deleted, so it must be one that only plans wrote into (see
// assertReplaceable): `--out .` must not take the project with it.

import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { canonicalJson } from '../compile/canonical-json.ts';
import { PLAN_FORMAT_VERSION, type PlanDocument } from './plan-format.ts';

export interface PlanDirContents {
  readonly document: PlanDocument;
  readonly markdown: string;
  /** sha256 -> content of every non-secret host file (BuiltPlan.objects). */
  readonly objects: ReadonlyMap<string, string>;
  /** terraform/<name> contents, when the fleet provisions hosts. */
  readonly terraform?: Readonly<Record<string, string>>;
  /** calendar.ics: the hosts' maintenance windows for customers (lib/plan/window-calendar.ts). */
  readonly calendar?: string;
}

export const CALENDAR_FILE = 'calendar.ics';

/** plan.json as written to disk. */
export function planJsonText(document: PlanDocument): string {
  return `${canonicalJson(document, 2)}\n`;
}

/** Where the content named by `sha256` lives in a plan directory: objects/<first two hex>/<sha256>. */
export function objectPath(sha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`${JSON.stringify(sha256)} is not a sha256 in hex`);
  return `objects/${sha256.slice(0, 2)}/${sha256}`;
}

/** Files written at once: enough to keep the thread pool busy while JavaScript prepares the next. */
const WRITE_CONCURRENCY = 64;

async function writeAll(root: string, files: ReadonlyMap<string, string>): Promise<void> {
  const entries = [...files];
  let next = 0;
  const worker = async () => {
    while (next < entries.length) {
      const [path, text] = entries[next++]!;
      await writeFile(join(root, path), text);
    }
  };
  await Promise.all(Array.from({ length: Math.min(WRITE_CONCURRENCY, entries.length) }, worker));
}

/**
 * What a plan directory holds at its top: what writePlanDir writes, and bin/apply's journal
 * (apply-journal.json, with the temp file of a write it was killed in).
 */
const PLAN_DIR_FILES = new Set(['plan.json', 'plan.md', CALENDAR_FILE, 'apply-journal.json']);
// hosts/ is format 2's, so that a plan directory of that format can be replaced by a new plan.
const PLAN_DIR_DIRS = new Set(['objects', 'hosts', 'terraform']);
const JOURNAL_TEMP = /^apply-journal\.json\.tmp-\d+$/;

/**
 * Throws, naming `dir`, unless it is missing, empty, or a plan directory: a plan.json of a plan
 * format this upkeep knows, and nothing else than a plan directory holds. Anything else may be a
 * project or someone's files, which replacing the directory would delete.
 */
function assertReplaceable(dir: string): void {
  let stat;
  try {
    stat = lstatSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const refuse = (why: string) => new Error(`${dir}: ${why}; refusing to replace it with a plan (choose another directory, or empty it yourself)`);
  if (!stat.isDirectory()) throw refuse(stat.isSymbolicLink() ? 'is a symlink, not a plan directory' : 'exists and is not a directory');
  const names = readdirSync(dir).sort();
  if (names.length === 0) return;
  let version: unknown;
  try {
    version = (JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as { format_version?: unknown }).format_version;
  } catch {
    throw refuse('is not empty and has no readable plan.json, so it is not a plan directory');
  }
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1 || version > PLAN_FORMAT_VERSION) {
    throw refuse(`has a plan.json of unknown format ${JSON.stringify(version)}, so it is not a plan directory of this upkeep`);
  }
  for (const name of names) {
    const entry = lstatSync(join(dir, name));
    const expected = ((PLAN_DIR_FILES.has(name) || JOURNAL_TEMP.test(name)) && entry.isFile()) || (PLAN_DIR_DIRS.has(name) && entry.isDirectory());
    if (!expected) throw refuse(`holds ${name}, which a plan directory does not`);
  }
}

export async function writePlanDir(dir: string, contents: PlanDirContents): Promise<void> {
  assertReplaceable(dir);
  const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  try {
    const files = new Map<string, string>();
    for (const [hash, text] of contents.objects) files.set(objectPath(hash), text);
    files.set('plan.json', planJsonText(contents.document));
    files.set('plan.md', contents.markdown);
    if (contents.calendar !== undefined) files.set(CALENDAR_FILE, contents.calendar);
    for (const [name, text] of Object.entries(contents.terraform ?? {})) files.set(`terraform/${name}`, text);
    const dirs = new Set([...files.keys()].map((p) => dirname(join(tmp, p))));
    for (const d of [...dirs].sort()) mkdirSync(d, { recursive: true });
    await writeAll(tmp, files);
    const old = `${tmp}.old`;
    if (existsSync(dir)) await rename(dir, old);
    await rename(tmp, dir);
    await rm(old, { recursive: true, force: true });
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw error;
  }
}

/** The calendar.ics of plan directory `dir`, if it has one. */
export function readPlanCalendar(dir: string): string | undefined {
  const file = join(dir, CALENDAR_FILE);
  return existsSync(file) && lstatSync(file).isFile() ? readFileSync(file, 'utf8') : undefined;
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
