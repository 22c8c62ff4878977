import { describe, expect, it } from 'vitest';
import { lastLines, pMap, TransportError } from '../../lib/hosts/transport.ts';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('pMap runs work with bounded parallelism', () => {
  it('never has more than `limit` calls in flight and keeps the input order', async () => {
    let inFlight = 0;
    let most = 0;
    const out = await pMap([5, 4, 3, 2, 1, 0], 2, async (n) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, n * 3));
      inFlight--;
      return n * 10;
    });
    expect(out).toEqual([50, 40, 30, 20, 10, 0]);
    expect(most).toBe(2);
  });

  it('rejects with the first error after the calls already started settle, and starts no new ones', async () => {
    const started: number[] = [];
    const settled: number[] = [];
    const run = pMap([1, 2, 3, 4, 5], 2, async (n) => {
      started.push(n);
      await tick();
      settled.push(n);
      if (n === 2) throw new Error('two failed');
      return n;
    });
    await expect(run).rejects.toThrow('two failed');
    expect(started).toEqual([1, 2, 3]);
    expect(settled).toEqual(started);
  });

  it('refuses a limit below one', async () => {
    await expect(pMap([1], 0, async (n) => n)).rejects.toThrow(/positive integer/);
  });
});

describe('transport errors', () => {
  it('name the host, the command, the exit status and the last stderr lines', () => {
    const error = new TransportError({ host: 'web1', command: 'ssh -p 22 root@203.0.113.7 sh -c <script>', exitCode: 255, stderr: 'a\nb\n\nHost key verification failed.\n', reason: 'ssh failed' });
    expect(error.message).toBe('web1: ssh failed (ssh -p 22 root@203.0.113.7 sh -c <script>, exit 255):\na\nb\nHost key verification failed.');
    expect(lastLines('1\n2\n3\n', 2)).toBe('2\n3');
  });
});
