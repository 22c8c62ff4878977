// The journal is the pipeline's record of a rollout: every action the applier took, on which host,
// with its result and duration. It is rewritten atomically after every entry, so a run that is
// killed half way still leaves a valid document that shows how far it got.

import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { firstLine } from '../hosts/transport.ts';

export const JOURNAL_FORMAT_VERSION = 1;

/** Steps that concern the whole fleet rather than one host are journalled under this name. */
export const FLEET = '(fleet)';

export type StepResult = 'ok' | 'changed' | 'unchanged' | 'failed' | 'rolled-back' | 'skipped';

export interface JournalEntry {
  /** Host name, or FLEET. */
  readonly host: string;
  /** e.g. "fleet-lock", "read-state", "apply", "confirm", "health-gate", "rollback", "soak". */
  readonly step: string;
  readonly result: StepResult;
  readonly duration_ms: number;
  /** Rollout wave the step belongs to (1-based), absent for steps outside any wave. */
  readonly wave?: number;
  readonly group?: string;
  /** One line saying why, for failures and skips; already scrubbed of secret values. */
  readonly detail?: string;
  readonly started_at: string;
}

export type Outcome = 'running' | 'ok' | 'failed' | 'rolled-back';

export interface JournalDocument {
  readonly format_version: typeof JOURNAL_FORMAT_VERSION;
  readonly plan_id: string;
  readonly fleet: string;
  readonly started_at: string;
  readonly finished_at: string | null;
  readonly outcome: Outcome;
  readonly exit_code: number | null;
  readonly entries: readonly JournalEntry[];
}

export interface JournalOptions {
  readonly file: string;
  readonly planId: string;
  readonly fleet: string;
  /** Scrubs secret values from details. @default identity */
  readonly redact?: (text: string) => string;
  /** @default () => new Date() */
  readonly now?: () => Date;
}

export type StepContext = Pick<JournalEntry, 'host' | 'step' | 'wave' | 'group'>;

export class Journal {
  readonly file: string;
  private readonly entries: JournalEntry[] = [];
  private readonly redact: (text: string) => string;
  private readonly now: () => Date;
  private readonly header: Pick<JournalDocument, 'plan_id' | 'fleet' | 'started_at'>;
  private ending: Pick<JournalDocument, 'finished_at' | 'outcome' | 'exit_code'> = { finished_at: null, outcome: 'running', exit_code: null };

  constructor(options: JournalOptions) {
    this.file = options.file;
    this.redact = options.redact ?? ((text) => text);
    this.now = options.now ?? (() => new Date());
    this.header = { plan_id: options.planId, fleet: options.fleet, started_at: this.now().toISOString() };
    this.flush();
  }

  /** Records a finished step. */
  record(context: StepContext, result: StepResult, startedAt: Date, detail?: string): JournalEntry {
    const entry: JournalEntry = {
      ...context,
      result,
      duration_ms: Math.max(0, this.now().getTime() - startedAt.getTime()),
      ...(detail === undefined ? {} : { detail: this.redact(detail) }),
      started_at: startedAt.toISOString(),
    };
    this.entries.push(entry);
    this.flush();
    return entry;
  }

  /**
   * Runs `action` and records it: its result comes from `judge`, a thrown error records "failed"
   * with the error's message and is rethrown.
   */
  async step<T>(context: StepContext, action: () => Promise<T>, judge: (value: T) => { result: StepResult; detail?: string } = () => ({ result: 'ok' })): Promise<T> {
    const startedAt = this.now();
    let value: T;
    try {
      value = await action();
    } catch (error) {
      this.record(context, 'failed', startedAt, firstLine(error));
      throw error;
    }
    const { result, detail } = judge(value);
    this.record(context, result, startedAt, detail);
    return value;
  }

  finish(outcome: Exclude<Outcome, 'running'>, exitCode: number): void {
    this.ending = { finished_at: this.now().toISOString(), outcome, exit_code: exitCode };
    this.flush();
  }

  document(): JournalDocument {
    return { format_version: JOURNAL_FORMAT_VERSION, ...this.header, ...this.ending, entries: [...this.entries] };
  }

  private flush(): void {
    mkdirSync(dirname(this.file), { recursive: true });
    const temp = `${this.file}.tmp-${process.pid}`;
    writeFileSync(temp, `${JSON.stringify(this.document(), null, 2)}\n`);
    renameSync(temp, this.file);
  }
}
