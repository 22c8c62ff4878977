// The plan directory on disk. Written whole into a sibling temporary directory and renamed into
// place, so a failed or interrupted plan never leaves a half-written directory behind. The
// directory it replaces is deleted, so it must be one that only plans wrote into (see
// assertReplaceable): `--out .` must not take the project with it.

import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, writeFile } from 'node:fs';
import { open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { canonicalJsonChunks } from '../compile/canonical-json.ts';
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

/** plan.json as written to disk, in pieces (a host at a time) whose concatenation is planJsonText. */
export function* planJsonChunks(document: PlanDocument): Generator<string> {
  yield* canonicalJsonChunks(document, 2, 2);
  yield '\n';
}

/** plan.json as written to disk. */
export function planJsonText(document: PlanDocument): string {
  return [...planJsonChunks(document)].join('');
}

/** Bytes gathered before each write of a file written in pieces. */
const PIECES_BUFFER = 1 << 20;

async function writePieces(file: string, pieces: Iterable<string>): Promise<void> {
  const handle = await open(file, 'w');
  try {
    let pending: string[] = [];
    let size = 0;
    for (const piece of pieces) {
      pending.push(piece);
      size += piece.length;
      if (size >= PIECES_BUFFER) {
        await handle.write(pending.join(''));
        pending = [];
        size = 0;
      }
    }
    if (pending.length > 0) await handle.write(pending.join(''));
  } finally {
    await handle.close();
  }
}

/** Where the content named by `sha256` lives in a plan directory: objects/<first two hex>/<sha256>. */
export function objectPath(sha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`${JSON.stringify(sha256)} is not a sha256 in hex`);
  return `objects/${sha256.slice(0, 2)}/${sha256}`;
}

/**
 * What a plan directory holds at its top: what writePlanDir writes, and bin/apply's journal
 * (apply-journal.json); WRITE_TEMP names the temporary files of writes that were killed.
 */
const PLAN_DIR_FILES = new Set(['plan.json', 'plan.md', CALENDAR_FILE, 'apply-journal.json']);
// hosts/ is format 2's, so that a plan directory of that format can be replaced by a new plan.
const PLAN_DIR_DIRS = new Set(['objects', 'hosts', 'terraform']);
// The temporary files bin/apply's journal and `upkeep update`'s calendar are written through, as a
// process killed while writing one leaves it.
const WRITE_TEMP = /^(?:apply-journal\.json|\.calendar\.ics)\.tmp-\d+$/;

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
    const expected = ((PLAN_DIR_FILES.has(name) || WRITE_TEMP.test(name)) && entry.isFile()) || (PLAN_DIR_DIRS.has(name) && entry.isDirectory());
    if (!expected) throw refuse(`holds ${name}, which a plan directory does not`);
  }
}

/** A plan into `dir` is written in `.<name of dir>.tmp-<pid>`; the directory it replaces waits in `<that>.old`. */
const temporaryPrefix = (dir: string) => `.${basename(dir)}.tmp-`;

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: running, as somebody else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Clears up after plans into `dir` whose process is gone (killed, or the machine stopped): their
 * temporary directories are removed, and if one was killed between moving the old plan directory
 * aside and moving the new one into place, the old one is moved back first. So `dir` is always an
 * old or a new plan, never missing because a plan was killed, and killed plans leave nothing
 * behind for long. A plan still running into the same directory is left alone.
 */
async function recoverFromKilledPlans(dir: string): Promise<void> {
  const parent = dirname(dir);
  const prefix = temporaryPrefix(dir);
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names.sort()) {
    const match = name.startsWith(prefix) ? /^(\d+)(\.old)?$/.exec(name.slice(prefix.length)) : null;
    if (!match || isRunning(Number(match[1]))) continue;
    const path = join(parent, name);
    if (match[2] !== undefined && !existsSync(dir)) await rename(path, dir);
    else await rm(path, { recursive: true, force: true });
  }
}

/** Files written at once: enough to keep the thread pool busy while JavaScript prepares the next. */
const WRITE_CONCURRENCY = 64;
/** Contents queued beyond those before room() makes the planner wait: bounds what is held in memory. */
const QUEUE_LIMIT = 4096;

/**
 * A plan directory being written. Objects are written as the planner meets them, concurrently
 * and each distinct content once, while it goes on compiling the next hosts: writing is mostly
 * the kernel's work, which then overlaps with the planner's, and no content waits in memory for
 * the whole fleet to be compiled. finish() writes plan.json, plan.md and the rest and renames the
 * directory into place; until then everything is in a sibling temporary directory.
 */
export class PlanDirWriter {
  private readonly written = new Set<string>();
  private readonly madeDirs = new Set<string>();
  /** Writes not started yet: queue[head..]. */
  private queue: [path: string, text: string][] = [];
  private head = 0;
  private running = 0;
  private failure: unknown;
  private roomWaiters: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];

  private constructor(
    readonly dir: string,
    private readonly tmp: string,
    private readonly queueLimit: number,
  ) {}

  /**
   * Checks that `dir` may be replaced (see assertReplaceable) and starts its temporary directory.
   * `queueLimit`: contents queued before room() waits (tests make it small to exercise the wait).
   */
  static async open(dir: string, options: { queueLimit?: number } = {}): Promise<PlanDirWriter> {
    await recoverFromKilledPlans(dir);
    assertReplaceable(dir);
    const tmp = join(dirname(dir), `${temporaryPrefix(dir)}${process.pid}`);
    await rm(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    return new PlanDirWriter(dir, tmp, options.queueLimit ?? QUEUE_LIMIT);
  }

  /** Queues the content named by `sha256` for objects/, unless it is there already. */
  object(sha256: string, text: string): void {
    if (this.written.has(sha256)) return;
    this.written.add(sha256);
    this.enqueue(objectPath(sha256), text);
  }

  /** Writes not yet started. */
  get queued(): number {
    return this.queue.length - this.head;
  }

  /** Resolves once the queue is short enough to add more (at once when it is). */
  async room(): Promise<void> {
    if (this.queue.length - this.head >= this.queueLimit && this.failure === undefined) await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    this.throwIfFailed();
  }

  /** Writes the rest, waits for every write and puts the directory in place of `dir`. */
  async finish(contents: Omit<PlanDirContents, 'objects'>): Promise<void> {
    try {
      this.enqueue('plan.md', contents.markdown);
      if (contents.calendar !== undefined) this.enqueue(CALENDAR_FILE, contents.calendar);
      for (const [name, text] of Object.entries(contents.terraform ?? {})) this.enqueue(`terraform/${name}`, text);
      // plan.json a host at a time, while the queue drains: never whole in memory.
      await writePieces(join(this.tmp, 'plan.json'), planJsonChunks(contents.document));
      await this.drained();
      this.throwIfFailed();
      const old = `${this.tmp}.old`;
      if (existsSync(this.dir)) await rename(this.dir, old);
      await rename(this.tmp, this.dir);
      await rm(old, { recursive: true, force: true });
    } catch (error) {
      await this.abandon();
      throw error;
    }
  }

  /** Stops writing and removes the temporary directory; `dir` stays as it was. */
  async abandon(): Promise<void> {
    this.queue = [];
    this.head = 0;
    await this.drained();
    await rm(this.tmp, { recursive: true, force: true });
  }

  private enqueue(path: string, text: string): void {
    const dir = dirname(path);
    if (dir !== '.' && !this.madeDirs.has(dir)) {
      mkdirSync(join(this.tmp, dir), { recursive: true });
      this.madeDirs.add(dir);
    }
    this.queue.push([path, text]);
    this.pump();
  }

  private pump(): void {
    while (this.running < WRITE_CONCURRENCY && this.head < this.queue.length && this.failure === undefined) {
      const [path, text] = this.queue[this.head]!;
      this.queue[this.head++] = undefined!;
      if (this.head === this.queue.length) {
        this.queue = [];
        this.head = 0;
      }
      this.running++;
      // The callback form: fs/promises' writeFile makes a FileHandle and a chain of promises per
      // file, which for tens of thousands of small files cost more of the main thread than the write.
      writeFile(join(this.tmp, path), text, (error) => {
        if (error) {
          this.failure ??= error;
          this.queue = [];
          this.head = 0;
        }
        this.settled();
      });
    }
  }

  private settled(): void {
    this.running--;
    this.pump();
    const queued = this.queue.length - this.head;
    if (queued < this.queueLimit / 2 || this.failure !== undefined) this.wake('roomWaiters');
    if (this.running === 0 && queued === 0) this.wake('idleWaiters');
  }

  private wake(which: 'roomWaiters' | 'idleWaiters'): void {
    const waiting = this[which];
    this[which] = [];
    for (const resolve of waiting) resolve();
  }

  /** Resolves when nothing is being written or queued. */
  private drained(): Promise<void> {
    if (this.running === 0 && this.queue.length === this.head) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}

export async function writePlanDir(dir: string, contents: PlanDirContents): Promise<void> {
  const writer = await PlanDirWriter.open(dir);
  for (const [hash, text] of contents.objects) writer.object(hash, text);
  await writer.finish(contents);
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
