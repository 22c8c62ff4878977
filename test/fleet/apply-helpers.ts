// Shared steps of the applier's fleet tests: plan fixtures pointed at a test fleet, bin/apply run
// in-process (so its transports' round trips can be counted), and reading a host's managed files.

import { readFileSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { runApply } from '../../lib/cli/apply.ts';
import type { JournalDocument } from '../../lib/apply/journal.ts';
import type { FixtureAddress } from '../fixtures/plan-dir.ts';
import { runCommand } from './run-command.ts';
import type { TestFleet, TestHost } from './testbed.ts';

export interface ApplyRun {
  readonly exitCode: number;
  readonly roundTrips: Readonly<Record<string, number>>;
  readonly stderr: string;
  readonly journal: JournalDocument;
}

export function addressesOf(fleet: TestFleet): Record<string, FixtureAddress> {
  return Object.fromEntries(fleet.hosts.map((h) => [h.name, { address: h.address, port: h.port, hostKey: h.hostKey }]));
}

function collector(onWrite?: (text: string) => void): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(Buffer.from(chunk));
      onWrite?.(Buffer.from(chunk).toString('utf8'));
      done();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

export interface ApplyPlanOptions {
  /** Keep the groups' soak times (bin/apply is run with --skip-soak otherwise). */
  readonly soak?: boolean;
  /** Sees bin/apply's progress as it is written, e.g. to cut a host off at an exact point. */
  readonly onProgress?: (text: string) => void;
}

/** bin/apply PLAN_DIR --identity ... --journal ... ARGS, in this process. */
export async function applyPlan(fleet: TestFleet, planDir: string, args: readonly string[] = [], options: ApplyPlanOptions = {}): Promise<ApplyRun> {
  const journalFile = `${planDir}/apply-journal.json`;
  const out = collector();
  const err = collector(options.onProgress);
  const result = await runApply([planDir, '--identity', fleet.identityFile, '--journal', journalFile, ...(options.soak ? [] : ['--skip-soak']), '--confirm-timeout', '20', ...args], {
    stdout: out.stream,
    stderr: err.stream,
  }).catch((error: unknown) => ({ exitCode: -1, roundTrips: {}, error }));
  if ('error' in result) throw new Error(`bin/apply threw: ${(result.error as Error).message}\n${err.text()}`);
  return { exitCode: result.exitCode, roundTrips: result.roundTrips, stderr: err.text(), journal: JSON.parse(readFileSync(journalFile, 'utf8')) as JournalDocument };
}

/**
 * The test's own ssh pins the keys the hosts present now: after bin/apply rotated a provisioned
 * host's bootstrap key, the test would otherwise not reach it.
 */
export async function pinPresentedKeys(fleet: TestFleet): Promise<void> {
  const lines = await Promise.all(
    fleet.hosts.map(async (h) => {
      const scan = await runCommand('ssh-keyscan', ['-t', 'ed25519', h.address], { timeoutMs: 30_000 });
      const line = scan.stdout.split('\n').find((l) => l.includes('ssh-ed25519'));
      if (!line) throw new Error(`ssh-keyscan ${h.name}: no ed25519 key\n${scan.stderr}`);
      return `${line}\n`;
    }),
  );
  writeFileSync(fleet.knownHostsFile, lines.join(''));
}

/**
 * Mode, owner, sha256 (and with `mtimes`, modification time) of every file upkeep manages on the
 * host (its units, its config, enabled-unit links), one line each, sorted: equal texts mean equal hosts.
 */
export async function snapshotHost(host: TestHost, options: { mtimes?: boolean } = {}): Promise<string> {
  const format = options.mtimes ? '%a %U:%G %Y' : '%a %U:%G';
  const result = await host.ssh(
    `cd / && find etc/systemd/system etc/upkeep -path '*upkeep*' \\( -type f -o -type l \\) 2>/dev/null | sort | while read -r f; do printf '%s %s %s\\n' "$(stat -c '${format}' "$f")" "$(if [ -L "$f" ]; then readlink "$f"; else sha256sum < "$f" | cut -c1-16; fi)" "$f"; done`,
  );
  if (result.exitCode !== 0) throw new Error(`${host.name}: snapshot failed: ${result.stderr}`);
  return result.stdout;
}

/** The journal entries of one host for one step. */
export function entries(run: ApplyRun, host: string, step?: string) {
  return run.journal.entries.filter((e) => e.host === host && (step === undefined || e.step === step));
}
