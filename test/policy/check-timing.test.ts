// The SLA arithmetic counts each check's longest run from the timeouts of its program: they must be
// the ones in lib/runtime/check-<kind>.sh, or the arithmetic proves a promise the hosts break.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { longestRunSeconds, PROBE_TIMEOUT_SECONDS, responseTime, runPeriodSeconds } from '../../lib/policy/check-timing.ts';
import type { Check } from '../../lib/policy/model.ts';
import { RUNTIME_SOURCE } from '../runtime/run-script.ts';

/** The longest a check program waits on a server, read from its text: 0 when it waits on none. */
function timeoutIn(script: string): number {
  const curl = [...script.matchAll(/--max-time (\d+)/g)].map((m) => Number(m[1]));
  const dig = [...script.matchAll(/\+time=(\d+) \+tries=(\d+)/g)].map((m) => Number(m[1]) * Number(m[2]));
  const handshake = [...script.matchAll(/UPKEEP_TLS_TIMEOUT:-(\d+)/g)].map((m) => Number(m[1]));
  return Math.max(0, ...curl, ...dig, ...handshake);
}

describe('check timing', () => {
  it("counts each probe's own timeout as its program has it", () => {
    for (const [kind, seconds] of Object.entries(PROBE_TIMEOUT_SECONDS)) {
      expect([kind, timeoutIn(readFileSync(join(RUNTIME_SOURCE, `check-${kind}.sh`), 'utf8'))]).toEqual([kind, seconds]);
    }
  });

  it('ends a mail-delivery run at its maximum delay, with a little for the program itself', () => {
    const mail: Check = { kind: 'mail-delivery', to: 'p@example.com', smtp: 'smtp://m.example.com', imap: 'imaps://m.example.com', imapUser: 'p', imapPassword: { env: 'P' }, maxDelay: '10m' };
    expect(longestRunSeconds(mail)).toBe(605);
    expect(runPeriodSeconds(mail, 60)).toBe(665);
  });

  it('adds up a fast check as interval x threshold, and a slow one as one interval and threshold runs', () => {
    expect(responseTime({ kind: 'http', url: 'https://example.com/' }, 60, 3, 120).seconds).toBe(60 * 3 + 30 + 120);
    const mail: Check = { kind: 'mail-delivery', to: 'p@example.com', smtp: 'smtp://m.example.com', imap: 'imaps://m.example.com', imapUser: 'p', imapPassword: { env: 'P' } };
    // The standard contract's mail check: 1m interval, threshold 2, maxDelay 5m, 2m delivery.
    expect(responseTime(mail, 60, 2, 120).seconds).toBe(60 + 2 * 305 + 120);
  });
});
