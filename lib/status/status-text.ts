// Short words for the report's values, shared by the markdown and HTML pages so both say the same.

import type { ItemState, JobStatus } from './status-report.ts';

/** "2026-11-30 14:05 UTC". */
export function when(epoch: number | null): string {
  if (epoch === null) return 'never';
  return `${new Date(epoch * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** "3 d", "5 h", "12 min", "40 s". */
export function age(seconds: number | null): string {
  if (seconds === null) return 'unknown';
  if (seconds >= 2 * 86_400) return `${Math.floor(seconds / 86_400)} d`;
  if (seconds >= 2 * 3600) return `${Math.floor(seconds / 3600)} h`;
  if (seconds >= 120) return `${Math.floor(seconds / 60)} min`;
  return `${seconds} s`;
}

export const STATE_WORD: Readonly<Record<ItemState, string>> = { ok: 'ok', out: 'OUT OF CONTRACT', unknown: 'unknown', exempt: 'exempt' };

/** "ok 3 h ago: snapshot saved", "failed 2 d ago", "none recorded". */
export function jobText(job: JobStatus): string {
  if (job.state === 'exempt') return 'exempt';
  if (job.at === null) return 'none recorded';
  return `${job.result ?? ''} ${age(job.age_seconds)} ago${job.detail ? `: ${job.detail}` : ''}`;
}
