// What a host does when things go wrong mid-apply: a cut connection, a killed agent, a full disk,
// a change nobody confirms, two sessions at once. Every host ends on its old or its new
// generation, never between, and a re-run converges.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apply, breakLock, confirm, HostAgentError, readState, type ApplyOptions, type HostBundle } from '../../lib/hosts/host-agent.ts';
import type { SshTransport } from '../../lib/hosts/ssh-transport.ts';
import { snapshotHost } from '../fleet/apply-helpers.ts';
import { FLEET_HOOK_TIMEOUT_MS, FLEET_TEST_TIMEOUT_MS, fleetAvailable, startFleet, type TestFleet, type TestHost } from '../fleet/testbed.ts';
import { generationOf, sshTo, tickBundle } from './host-fixtures.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await sleep(200);
  }
}

async function conf(host: TestHost): Promise<string> {
  return (await host.ssh('cat /etc/upkeep/test.conf')).stdout;
}

describe.skipIf(!fleetAvailable('host agent failure tests on the real fleet'))('a host interrupted or refused mid-apply', () => {
  let fleet: TestFleet;
  let host: TestHost;
  let t: SshTransport;
  let version = 0;
  /** Brings the host to a fresh generation and returns it with its bundle. */
  async function freshGeneration(): Promise<{ bundle: HostBundle; generation: string }> {
    const bundle = tickBundle(`base-${++version}`);
    const generation = generationOf(bundle);
    await apply(t, bundle, { planId: 'plan', generation, baseGeneration: (await readState(t)).generation });
    return { bundle, generation };
  }
  function next(base: string, extra: Partial<ApplyOptions> = {}): { bundle: HostBundle; options: ApplyOptions } {
    const bundle = tickBundle(`next-${++version}`);
    return { bundle, options: { planId: 'plan', generation: generationOf(bundle), baseGeneration: base, ...extra } };
  }

  beforeAll(async () => {
    fleet = await startFleet(['broken1']);
    host = fleet.host('broken1');
    t = sshTo(fleet, host);
  }, FLEET_HOOK_TIMEOUT_MS);
  afterAll(async () => {
    await t?.close();
    await fleet?.stop();
  }, FLEET_HOOK_TIMEOUT_MS);

  it('is on its old generation after the connection is cut mid-switch, and a re-run converges', async () => {
    const old = await freshGeneration();
    const onOld = await snapshotHost(host);
    const { bundle, options } = next(old.generation);
    const cut = new AbortController();
    const session = sshTo(fleet, host);
    const interrupted = apply(session, bundle, { ...options, pauseAfterStep: { step: 'files', seconds: 60 }, signal: cut.signal }).catch((e: unknown) => e);
    // The new config is on disk: the host is between generations when the connection drops.
    await until('the switch wrote the new config', async () => (await conf(host)).startsWith('version=next'));
    cut.abort();
    expect(String(await interrupted)).toMatch(/aborted/);
    await session.close();

    // The agent notices its connection is gone within seconds and ends, freeing the lock.
    let state = await readState(t);
    await until('the lock is free', async () => state.lock === null || (state = await readState(t)).lock === null, 15_000);
    expect(state.generation).toBe(old.generation);
    expect(state.recovered).toBe(`undid interrupted switch ${old.generation} -> ${options.generation}`);
    expect(state.drift).toEqual([]);
    expect(state.lock).toBeNull();
    expect(await snapshotHost(host)).toBe(onOld);

    expect((await apply(t, bundle, options)).changed).toBe(true);
    expect((await readState(t)).generation).toBe(options.generation);
  }, FLEET_TEST_TIMEOUT_MS);

  it('is on its new generation when the connection is cut after the commit', async () => {
    const old = await freshGeneration();
    const { bundle, options } = next(old.generation);
    const cut = new AbortController();
    const interrupted = apply(sshTo(fleet, host), bundle, { ...options, pauseAfterStep: { step: 'commit', seconds: 60 }, signal: cut.signal }).catch((e: unknown) => e);
    await until('the switch committed', async () => (await host.ssh('grep -c "^generation" /var/lib/upkeep/manifest && grep -q ' + options.generation + ' /var/lib/upkeep/manifest')).exitCode === 0);
    cut.abort();
    await interrupted;
    // As above: the cut session's agent ends on its own within seconds (longer on a busy machine).
    let state = await readState(t);
    await until('the lock is free', async () => state.lock === null || (state = await readState(t)).lock === null, 15_000);
    expect(state.generation).toBe(options.generation);
    expect(state.previousGeneration).toBe(old.generation);
    expect(state.drift).toEqual([]);
    expect((await apply(t, bundle, options)).changed).toBe(false);
  }, FLEET_TEST_TIMEOUT_MS);

  it('recovers its old generation after the agent itself is SIGKILLed mid-switch', async () => {
    const old = await freshGeneration();
    const onOld = await snapshotHost(host);
    const { bundle, options } = next(old.generation);
    const running = apply(sshTo(fleet, host), bundle, { ...options, pauseAfterStep: { step: 'files', seconds: 60 } }).catch((e: unknown) => e);
    await until('the switch wrote the new config', async () => (await conf(host)).startsWith('version=next'));
    const holder = (await readState(t)).lock;
    expect(holder?.pid).toBeGreaterThan(1);
    await host.ssh(`kill -KILL ${holder?.pid}`);
    expect(await running).toBeInstanceOf(Error);
    expect((await readState(t)).generation).toBe(old.generation);
    expect(await snapshotHost(host)).toBe(onOld);
  }, FLEET_TEST_TIMEOUT_MS);

  it('refuses a second session while one holds the lock, names the holder, and frees the lock when that connection dies', async () => {
    const old = await freshGeneration();
    const { bundle, options } = next(old.generation);
    const cut = new AbortController();
    const first = apply(sshTo(fleet, host), bundle, { ...options, holder: 'pipeline 41', pauseAfterStep: { step: 'lock', seconds: 60 }, signal: cut.signal }).catch((e: unknown) => e);
    await until('the first session holds the lock', async () => (await readState(t)).lock !== null);

    const refused = await apply(t, bundle, { ...options, holder: 'pipeline 42' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(HostAgentError);
    expect((refused as HostAgentError).kind).toBe('locked');
    expect((refused as HostAgentError).holder).toMatchObject({ holder: 'pipeline 41', from: '127.0.0.1' });
    expect((refused as Error).message).toMatch(/held by pipeline 41, pid \d+ from 127\.0\.0\.1, for \d+ s/);

    cut.abort();
    await first;
    await until('the lock is free', async () => (await readState(t)).lock === null, 15_000);
    expect((await apply(t, bundle, options)).changed).toBe(true);
  }, FLEET_TEST_TIMEOUT_MS);

  it('breaks a lock held by a hung session on request, leaving the host on its old generation', async () => {
    const old = await freshGeneration();
    const { bundle, options } = next(old.generation);
    const hung = apply(sshTo(fleet, host), bundle, { ...options, holder: 'stuck run', pauseAfterStep: { step: 'files', seconds: 120 } }).catch((e: unknown) => e);
    await until('the switch wrote the new config', async () => (await conf(host)).startsWith('version=next'));
    const broken = await breakLock(t);
    expect(broken?.holder).toBe('stuck run');
    expect(await hung).toBeInstanceOf(Error);
    const state = await readState(t);
    expect(state.lock).toBeNull();
    expect(state.generation).toBe(old.generation);
    expect(state.drift).toEqual([]);
  }, FLEET_TEST_TIMEOUT_MS);

  it('rolls itself back when the change is not confirmed in time', async () => {
    const old = await freshGeneration();
    const onOld = await snapshotHost(host);
    const { bundle, options } = next(old.generation, { confirmTimeoutSeconds: 5 });
    const result = await apply(t, bundle, options);
    expect(result.rollbackUnit).toMatch(/^upkeep-rollback-/);
    expect(result.warnings).toEqual([]);
    expect((await readState(t)).unconfirmedGeneration).toBe(options.generation);
    await until('the host rolled back', async () => (await readState(t)).generation === old.generation, 60_000);
    expect(await snapshotHost(host)).toBe(onOld);
    const late = await confirm(t, options.generation).catch((e: unknown) => e);
    expect((late as HostAgentError).kind).toBe('not-on-generation');
    expect((await host.ssh('journalctl -t upkeep --no-pager -o cat')).stdout).toContain(`generation ${options.generation} was not confirmed in time: rolled back`);
  }, FLEET_TEST_TIMEOUT_MS);

  it('keeps a change that is confirmed over a new connection', async () => {
    const old = await freshGeneration();
    const { bundle, options } = next(old.generation, { confirmTimeoutSeconds: 5 });
    await apply(t, bundle, options);
    const second = sshTo(fleet, host);
    try {
      await confirm(second, options.generation);
    } finally {
      await second.close();
    }
    await sleep(8_000);
    const state = await readState(t);
    expect(state.generation).toBe(options.generation);
    expect(state.unconfirmedGeneration).toBeNull();
  }, FLEET_TEST_TIMEOUT_MS);

  for (const dir of ['/var/lib/upkeep', '/etc/systemd/system']) {
    it(`fails cleanly and stays on its old generation when ${dir} is full, and converges once there is space`, async () => {
      const old = await freshGeneration();
      const onOld = await snapshotHost(host);
      // A small tmpfs with the directory's content, then filled to the last block.
      const fill = await host.ssh(
        `set -e; s=$(mktemp -d); cp -a ${dir}/. "$s"/; mount -t tmpfs -o size=2m tmpfs ${dir}; cp -a "$s"/. ${dir}/; dd if=/dev/zero of=${dir}/.fill bs=4k 2>/dev/null || true; test "$(df --output=avail ${dir} | tail -n 1 | tr -d ' ')" -lt 8`,
      );
      expect(fill.exitCode).toBe(0);
      try {
        const big = { path: '/etc/systemd/system/upkeep-test-big.conf', mode: '0644', owner: 'root:root', content: 'x'.repeat(64 * 1024) };
        const bundle = tickBundle(`full-${++version}`, { extraFiles: [big] });
        const options = { planId: 'plan', generation: generationOf(bundle), baseGeneration: old.generation };
        const error = await apply(t, bundle, options).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(HostAgentError);
        expect((error as HostAgentError).kind).toBe('failed');
        expect((error as Error).message).toMatch(/stays on generation/);
        const state = await readState(t);
        expect(state.generation).toBe(old.generation);
        expect(state.drift).toEqual([]);
        expect(await snapshotHost(host)).toBe(onOld);

        await host.ssh(`rm -f ${dir}/.fill`);
        expect((await apply(t, bundle, options)).changed).toBe(true);
        expect((await readState(t)).generation).toBe(options.generation);
      } finally {
        // Copy what the tmpfs now holds back to the real directory before unmounting it.
        await host.ssh(`s=$(mktemp -d); rm -f ${dir}/.fill; cp -a ${dir}/. "$s"/; umount ${dir} && cp -a "$s"/. ${dir}/`);
      }
    }, FLEET_TEST_TIMEOUT_MS);
  }
});
