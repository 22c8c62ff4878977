// `upkeep update KIND PLAN_DIR` run in the test's own process, as the update fleet tests drive it:
// its journal and promoted versions read back, its progress text visible while it runs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { JournalDocument } from '../../lib/apply/journal.ts';
import { runUpdate } from '../../lib/cli/update.ts';

export interface UpdateRun {
  readonly exitCode: number;
  readonly stderr: string;
  readonly journal: JournalDocument;
  readonly promoted: { packages: { name: string; version: string; kind: string; class: string }[] } | undefined;
}

/**
 * Runs one wave with its journal and promoted file named after `run` in `work`; `whileRunning`
 * sees the progress text as it grows.
 */
export async function runUpdateWave(
  options: { readonly kind: 'security' | 'routine'; readonly planDir: string; readonly identityFile: string; readonly work: string; readonly run: number },
  whileRunning?: (progress: () => string) => Promise<void>,
): Promise<UpdateRun> {
  const journal = join(options.work, `journal-${options.run}.json`);
  const promoted = join(options.work, `promoted-${options.run}.json`);
  const chunks: Buffer[] = [];
  const stderr = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(Buffer.from(chunk));
      done();
    },
  });
  const text = () => Buffer.concat(chunks).toString('utf8');
  const running = runUpdate([options.kind, options.planDir, '--identity', options.identityFile, '--journal', journal, '--promoted', promoted], { stdout: new Writable({ write: (_c, _e, done) => done() }), stderr });
  await whileRunning?.(text);
  const exitCode = await running;
  let promotedDoc: UpdateRun['promoted'];
  try {
    promotedDoc = JSON.parse(readFileSync(promoted, 'utf8'));
  } catch {
    promotedDoc = undefined;
  }
  return { exitCode, stderr: text(), journal: JSON.parse(readFileSync(journal, 'utf8')) as JournalDocument, promoted: promotedDoc };
}
