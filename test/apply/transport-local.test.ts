// The local transport applies into an image root: the same agent, every path under the root,
// `systemctl --root` for enablement. These tests need no fleet: a temp dir is the image.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, lstatSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { apply, HostAgentError, readState, rollback, type HostBundle } from '../../lib/hosts/host-agent.ts';
import { LocalTransport } from '../../lib/hosts/local-transport.ts';
import { generationOf, RecordingTransport, SERVICE, TIMER, tickBundle } from './host-fixtures.ts';
import { programsAvailable } from '../programs.ts';

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

function imageRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'upkeep-image-'));
  roots.push(root);
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nbackup:x:34:34:backup:/var/backups:/usr/sbin/nologin\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\nbackup:x:34:\n');
  return root;
}

/** "path mode uid:gid sha256|->target" for every file and link under the root's managed dirs. */
function snapshot(root: string): string {
  const lines: string[] = [];
  const walk = (dir: string): void => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir).sort()) {
      const full = join(dir, entry);
      const st = lstatSync(full);
      if (st.isDirectory()) walk(full);
      else {
        const what = st.isSymbolicLink() ? `->${readlinkSync(full)}` : createHash('sha256').update(readFileSync(full)).digest('hex');
        lines.push(`${relative(root, full)} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${what}`);
      }
    }
  };
  walk(join(root, 'etc'));
  return lines.join('\n');
}

const v1 = tickBundle('1', { secret: 's3cret-value-1\n' });
const v2 = tickBundle('2', { secret: 's3cret-value-2\n' });
const g1 = generationOf(v1);
const g2 = generationOf(v2);
const opts = (generation: string, baseGeneration: string | null) => ({ planId: 'plan-test', generation, baseGeneration });

describe.skipIf(!programsAvailable('test/apply/transport-local.test.ts', ['systemctl']))('the local transport applies into an image root', () => {
  it('installs files with their modes and owners and enables the timer with systemctl --root', async () => {
    const root = imageRoot();
    const t = new LocalTransport(root);
    const result = await apply(t, v1, opts(g1, null));
    expect(result.changed).toBe(true);
    expect(result.unitsEnabled).toEqual([TIMER]);
    expect(result.daemonReloaded).toBe(false);
    expect(readlinkSync(join(root, 'etc/systemd/system/timers.target.wants', TIMER))).toBe(`/etc/systemd/system/${TIMER}`);
    expect(readFileSync(join(root, 'etc/upkeep/test.conf'), 'utf8')).toBe('version=1\n');
    expect(lstatSync(join(root, 'etc/upkeep/test.secret')).mode & 0o777).toBe(0o600);
    const state = await readState(t);
    expect(state.generation).toBe(g1);
    expect(state.drift).toEqual([]);
    expect(state.units).toEqual([{ name: TIMER, enabled: 'enabled', active: 'offline' }]);
  });

  it('changes nothing on a second apply and uses one round trip', async () => {
    const root = imageRoot();
    const t = new LocalTransport(root);
    await apply(t, v1, opts(g1, null));
    const before = snapshot(root);
    const trips = t.roundTrips;
    const again = await apply(t, v1, opts(g1, null));
    expect(again.changed).toBe(false);
    expect(again.filesWritten).toEqual([]);
    expect(t.roundTrips - trips).toBe(1);
    expect(snapshot(root)).toBe(before);
  });

  it('writes only the file that changed and reports drift it repairs', async () => {
    const root = imageRoot();
    const t = new LocalTransport(root);
    await apply(t, v1, opts(g1, null));
    const changed = await apply(t, v2, opts(g2, g1));
    expect([...changed.filesWritten].sort()).toEqual(['/etc/upkeep/test.conf', '/etc/upkeep/test.secret']);
    writeFileSync(join(root, 'etc/upkeep/test.conf'), 'edited by hand\n');
    const state = await readState(t);
    expect(state.drift).toEqual([{ path: '/etc/upkeep/test.conf', fields: ['content'] }]);
    const repaired = await apply(t, v2, opts(g2, g1));
    expect(repaired.filesWritten).toEqual(['/etc/upkeep/test.conf']);
    expect((await readState(t)).drift).toEqual([]);
  });

  it('rolls back byte for byte, including a file that existed before upkeep managed it', async () => {
    const root = imageRoot();
    mkdirSync(join(root, 'etc/upkeep'), { recursive: true });
    writeFileSync(join(root, 'etc/upkeep/test.conf'), 'written by the image build\n', { mode: 0o640 });
    const t = new LocalTransport(root);
    const pristine = snapshot(root);
    await apply(t, v1, opts(g1, null));
    const onV1 = snapshot(root);
    await apply(t, v2, opts(g2, g1));
    expect(snapshot(root)).not.toBe(onV1);
    expect(await rollback(t, { toGeneration: g1 })).toEqual({ host: t.host, from: g2, to: g1 });
    expect(snapshot(root)).toBe(onV1);
    expect(await rollback(t)).toEqual({ host: t.host, from: g1, to: null });
    expect(snapshot(root)).toBe(pristine);
    expect((await readState(t)).generation).toBeNull();
  });

  it('removes files that are no longer managed and disables their units', async () => {
    const root = imageRoot();
    const t = new LocalTransport(root);
    await apply(t, v1, opts(g1, null));
    const smaller: HostBundle = { files: v1.files.filter((f) => !f.path.includes('upkeep-test-t')), units: [], packages: [] };
    const result = await apply(t, smaller, opts(generationOf(smaller), g1));
    expect(result.unitsDisabled).toEqual([TIMER]);
    expect([...result.filesRemoved].sort()).toEqual([`/etc/systemd/system/${SERVICE}`, `/etc/systemd/system/${TIMER}`]);
    expect(existsSync(join(root, 'etc/systemd/system/timers.target.wants', TIMER))).toBe(false);
  });

  it('refuses a stale plan, naming the generation the host is on and how to re-plan', async () => {
    const root = imageRoot();
    const t = new LocalTransport(root);
    await apply(t, v1, opts(g1, null));
    const error = await apply(t, v2, opts(g2, 'someothergeneration')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostAgentError);
    expect((error as HostAgentError).kind).toBe('stale-plan');
    expect((error as HostAgentError).currentGeneration).toBe(g1);
    expect((error as Error).message).toMatch(/re-plan/);
    expect((await readState(t)).generation).toBe(g1);
  });

  it('refuses while another session holds the host, naming the holder', async () => {
    const root = imageRoot();
    const t = new LocalTransport(root);
    await apply(t, v1, opts(g1, null));
    const controller = new AbortController();
    const first = apply(t, v2, { ...opts(g2, g1), holder: 'pipeline 41', pauseAfterStep: { step: 'lock', seconds: 30 }, signal: controller.signal }).catch((e: unknown) => e);
    await waitFor(async () => (await readState(t)).lock !== null);
    const error = await apply(new LocalTransport(root), v2, { ...opts(g2, g1), holder: 'pipeline 42' }).catch((e: unknown) => e);
    expect((error as HostAgentError).kind).toBe('locked');
    expect((error as HostAgentError).holder?.holder).toBe('pipeline 41');
    expect((error as Error).message).toMatch(/pipeline 41/);
    controller.abort();
    await first;
    expect((await readState(t)).lock).toBeNull();
  });

  it('waits for a session that holds the lock only for an instant, as a reader of the state does, instead of refusing', async () => {
    const root = imageRoot();
    const t = new LocalTransport(root);
    await apply(t, v1, opts(g1, null));
    const reader = spawn('flock', [join(root, 'var/lib/upkeep/lock'), 'sleep', '1'], { stdio: 'ignore' });
    const released = new Promise((resolve) => reader.on('exit', resolve));
    await waitFor(async () => (await readState(t)).lock !== null);
    expect((await apply(t, v2, opts(g2, g1))).changed).toBe(true);
    await released;
  });

  /** An image on v1 whose switch to v2 was killed after test.conf was written; `onV1` is its v1 snapshot. */
  async function interruptedAfterFiles(): Promise<{ root: string; t: LocalTransport; onV1: string }> {
    const root = imageRoot();
    const t = new LocalTransport(root);
    await apply(t, v1, opts(g1, null));
    const onV1 = snapshot(root);
    const controller = new AbortController();
    const interrupted = apply(t, v2, { ...opts(g2, g1), pauseAfterStep: { step: 'files', seconds: 30 }, signal: controller.signal }).catch((e: unknown) => e);
    await waitFor(() => readFileSync(join(root, 'etc/upkeep/test.conf'), 'utf8') === 'version=2\n');
    controller.abort();
    expect(await interrupted).toBeInstanceOf(Error);
    return { root, t, onV1 };
  }

  it('undoes a switch interrupted after some files were written: the image is on its old generation', async () => {
    const { root, t, onV1 } = await interruptedAfterFiles();
    expect(snapshot(root)).not.toBe(onV1);
    const state = await readState(t);
    expect(state.recovered).toBe(`undid interrupted switch ${g1} -> ${g2}`);
    expect(state.generation).toBe(g1);
    expect(snapshot(root)).toBe(onV1);
    expect((await apply(t, v2, opts(g2, g1))).changed).toBe(true);
  });

  it('removes the temp file of an install killed between writing and renaming it when it undoes the switch', async () => {
    const { root, t, onV1 } = await interruptedAfterFiles();
    // What a SIGKILL inside install_file leaves, whatever moment the abort happened to hit.
    writeFileSync(join(root, 'etc/upkeep/.upkeep-new.test.secret'), '');
    expect((await readState(t)).recovered).toBe(`undid interrupted switch ${g1} -> ${g2}`);
    expect(snapshot(root)).toBe(onV1);
  });

  it('sends file contents, secrets included, only on stdin, never in the script', async () => {
    const t = new RecordingTransport(new LocalTransport(imageRoot()));
    await apply(t, v1, opts(g1, null));
    expect(t.scripts.join('\n')).not.toContain('s3cret-value-1');
    expect(t.inputs.join('')).toContain('s3cret-value-1');
  });

  it('rejects paths that are not canonical before connecting', async () => {
    const t = new LocalTransport(imageRoot());
    const bad: HostBundle = { files: [{ path: '/etc/../root/.ssh/authorized_keys', mode: '0600', owner: 'root:root', content: 'x' }], units: [], packages: [] };
    await expect(apply(t, bad, opts('g', null))).rejects.toThrow(/canonical/);
    const state: HostBundle = { files: [{ path: '/var/lib/upkeep/manifest', mode: '0600', owner: 'root:root', content: 'x' }], units: [], packages: [] };
    await expect(apply(t, state, opts('g', null))).rejects.toThrow(/belongs to upkeep/);
    expect(t.roundTrips).toBe(0);
  });

  it('fails cleanly when a package is missing from the image', async () => {
    const root = imageRoot();
    const t = new LocalTransport(root);
    const error = await apply(t, { ...v1, packages: ['restic'] }, opts(g1, null)).catch((e: unknown) => e);
    expect((error as HostAgentError).kind).toBe('failed');
    expect((error as Error).message).toMatch(/packages missing from the image: restic/);
    expect(existsSync(join(root, 'etc/upkeep/test.conf'))).toBe(false);
  });
});

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await condition()) return;
    } catch {
      // not there yet
    }
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

