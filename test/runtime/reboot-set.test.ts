// reboot.sh as a member of a reboot set, at the edges of its slot and with peers that answer or not,
// and that are ready or not. The peers are real TCP listeners (and a closed port) on this machine,
// each peer on its own loopback address serving its readiness over real HTTP on its readiness
// port, signed with its own ed25519 key (real ssh-keygen) over the nonce it was asked with, as
// serve-reboot-ready.sh signs it; only systemctl is a FAKE (no systemd as PID 1 here), recording
// the reboot it was asked for.

import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderEnvFile } from '../../lib/compile/env-file.ts';
import { peerPinFiles } from '../../lib/apply/peer-pins.ts';
import { rebootSetEnv, rebootSetSigners } from '../../lib/compile/reboot-set.ts';
import type { RebootSetPeer } from '../../lib/policy/resolved.ts';
import { windowEnv } from '../../lib/compile/updates.ts';
import { rebootSlot } from '../../lib/policy/reboot-slot.ts';
import { sundayWindow } from '../fixtures/resolved-fleet.ts';
import { runScriptAsync, tempDir } from './run-script.ts';

/** Sunday 2026-11-08 02:00 Europe/Berlin (winter time), when sundayWindow (2 h) opens. */
const OPENS = Date.parse('2026-11-08T01:00:00Z') / 1000;

async function listen(address = '127.0.0.1', port = 0): Promise<[Server, number]> {
  const server = createServer((socket) => socket.end());
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, address, resolve));
  return [server, (server.address() as { port: number }).port];
}

/** The peers: ns1 on 127.0.0.1, ns3 on 127.0.0.2. */
const ADDRESSES = { ns1: '127.0.0.1', ns3: '127.0.0.2' } as const;
type Peer = keyof typeof ADDRESSES;

describe('reboot.sh in a reboot set (FAKE systemctl)', () => {
  const servers: { close(done: () => void): unknown }[] = [];
  const ports: Record<Peer, number> = { ns1: 0, ns3: 0 };
  let closedPort: number;
  let readyPort = 0;
  /** What each peer's readiness socket answers: its status and first line, as serve-reboot-ready.sh would. */
  const readiness: Record<Peer, [number, string]> = { ns1: [200, 'ready'], ns3: [200, 'ready'] };
  /**
   * How each peer signs: with its own key over the nonce it was asked with (as serve-reboot-ready.sh),
   * not at all, with another key (an impostor at its address), or over another nonce (a replay).
   */
  const signing: Record<Peer, 'own' | 'none' | 'impostor' | 'replay'> = { ns1: 'own', ns3: 'own' };
  const keys = tempDir();
  /** Each peer's public key, as the policy pins it. */
  const publicKeys: Partial<Record<Peer | 'impostor', string>> = {};

  /** An ssh signature of serve-reboot-ready.sh's lines for `peer`, by `key`. */
  function sign(peer: Peer, nonce: string, status: number, key: Peer | 'impostor'): string {
    const lines = `upkeep reboot readiness\nset dns\nmember ${peer}\nnonce ${nonce}\nstatus ${status}\n`;
    const signed = spawnSync('ssh-keygen', ['-Y', 'sign', '-q', '-f', join(keys, key), '-n', 'upkeep-reboot-ready'], { input: lines, encoding: 'utf8' });
    expect(signed.status, signed.stderr).toBe(0);
    return signed.stdout;
  }

  beforeAll(async () => {
    for (const key of ['ns1', 'ns3', 'impostor'] as const) {
      const made = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', key, '-f', join(keys, key)], { encoding: 'utf8' });
      expect(made.status, made.stderr).toBe(0);
      publicKeys[key] = readFileSync(join(keys, `${key}.pub`), 'utf8').trim();
    }
    for (const peer of Object.keys(ADDRESSES) as Peer[]) {
      const [server, port] = await listen(ADDRESSES[peer]);
      servers.push(server);
      ports[peer] = port;
    }
    const [closed, port] = await listen();
    closedPort = port;
    await new Promise((resolve) => closed.close(resolve));
    // One port for both peers' readiness here, each peer answering on its own address.
    for (const peer of Object.keys(ADDRESSES) as Peer[]) {
      const server = createHttpServer((request, response) => {
        const [status, line] = readiness[peer];
        const nonce = /^\/\?nonce=([0-9a-f]{32})$/.exec(request.url ?? '')?.[1];
        const how = signing[peer];
        const signature = nonce === undefined || how === 'none' ? '' : sign(peer, how === 'replay' ? '0'.repeat(32) : nonce, status, how === 'impostor' ? 'impostor' : peer);
        response.writeHead(status, { 'Content-Type': 'text/plain' }).end(`${line}\n${signature}`);
      });
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(readyPort, ADDRESSES[peer], resolve));
      readyPort = (server.address() as { port: number }).port;
      servers.push(server);
    }
  });
  afterAll(() => Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))));

  /**
   * A fresh host ns2, slot 2 of 3, whose peers ns1 and ns3 listen on `peerPorts` (on `addresses`),
   * with the peers' keys pinned unless `unpinned`; runs reboot.sh at `now`, returns what it said
   * and whether it rebooted. A peer in `provisioned` has neither address nor key in the policy:
   * bin/apply's pin files give them (the key `pin.key` names), or nothing is pinned yet (null).
   */
  async function rebootAt(
    now: number,
    peerPorts: [number, number],
    addresses: Record<Peer, string> = ADDRESSES,
    unpinned: readonly Peer[] = [],
    provisioned: Partial<Record<Peer, { address: string; key: Peer | 'impostor' } | null>> = {},
  ) {
    const dir = tempDir();
    mkdirSync(join(dir, 'etc'));
    mkdirSync(join(dir, 'state'));
    mkdirSync(join(dir, 'bin'));
    writeFileSync(join(dir, 'etc/window.env'), windowEnv(sundayWindow));
    writeFileSync(join(dir, 'etc/updates.env'), renderEnvFile('test', { UPKEEP_PACKAGE_FAMILY: 'apt', UPKEEP_REBOOT: 'always' }));
    const peers = (['ns1', 'ns3'] as const).map((host, i): RebootSetPeer => {
      if (provisioned[host] !== undefined) return { host, port: peerPorts[i]!, provisioned: true };
      return { host, address: addresses[host], port: peerPorts[i]!, ...(!unpinned.includes(host) && { hostKey: publicKeys[host]! }) };
    });
    const member = { set: 'dns', host: 'ns2', index: 1, count: 3, peers };
    const env = rebootSetEnv(sundayWindow, member, { checks: ['ns2-dns'], withinSeconds: 240 });
    writeFileSync(join(dir, 'etc/reboot-set-signers'), rebootSetSigners(member));
    const pinned = Object.entries(provisioned).flatMap(([name, pin]) => (pin ? [{ name, address: pin.address, hostKey: publicKeys[pin.key]!, signer: true }] : []));
    if (pinned.length > 0) {
      const files = peerPinFiles(pinned);
      mkdirSync(join(dir, 'state/peers'));
      writeFileSync(join(dir, 'state/peers/addresses'), files.addresses);
      writeFileSync(join(dir, 'state/peers/signers'), files.signers);
    }
    // The peers' readiness ports by their place in the set (ns1 first, ns3 third), moved to the one
    // this test could listen on; a provisioned peer's address is left to the pin.
    const at = (peer: Peer) => (provisioned[peer] === undefined ? addresses[peer] : '');
    expect(env).toContain(`UPKEEP_REBOOT_PEERS='ns1,${at('ns1')},${peerPorts[0]},9470 ns3,${at('ns3')},${peerPorts[1]},9472'\n`);
    writeFileSync(join(dir, 'etc/reboot-set.env'), env.replace(',9470 ', `,${readyPort} `).replace(",9472'", `,${readyPort}'`));
    writeFileSync(join(dir, 'state/routine-last-opening'), '2026-11-08\n');
    writeFileSync(join(dir, 'bin/systemctl'), `#!/bin/sh\necho "systemctl $*" >> '${dir}/calls'\n`);
    chmodSync(join(dir, 'bin/systemctl'), 0o755);
    const run = await runScriptAsync('reboot.sh', [], { PATH: `${join(dir, 'bin')}:${process.env.PATH}`, UPKEEP_CONFIG_DIR: join(dir, 'etc'), UPKEEP_STATE_DIR: join(dir, 'state'), UPKEEP_NOW: String(now) });
    expect(run.status, run.stderr).toBe(0);
    const calls = existsSync(join(dir, 'calls')) ? readFileSync(join(dir, 'calls'), 'utf8') : '';
    return { said: run.stdout, rebooted: calls === 'systemctl reboot\n' };
  }

  it('begins a reboot only from the start of its slot to the middle of it, to the second', async () => {
    const slot = rebootSlot(sundayWindow.durationSeconds, 1, 3);
    expect(slot).toEqual({ startSeconds: 2400, beginBySeconds: 3600, endSeconds: 4800 });
    const both: [number, number] = [ports.ns1, ports.ns3];
    for (const [offset, rebooted] of [[0, false], [slot.startSeconds - 1, false], [slot.startSeconds, true], [slot.beginBySeconds - 1, true], [slot.beginBySeconds, false], [slot.endSeconds, false]] as const) {
      const r = await rebootAt(OPENS + offset, both);
      expect(`${offset}: ${r.rebooted}`).toBe(`${offset}: ${rebooted}`);
      if (!rebooted) expect(r.said).toContain("outside this host's slot in reboot set dns");
    }
  });

  it('does not reboot, and says which peer, when any peer does not answer on its port', async () => {
    const now = OPENS + 3000;
    expect((await rebootAt(now, [ports.ns1, ports.ns3])).rebooted).toBe(true);
    const second = await rebootAt(now, [ports.ns1, closedPort]);
    expect(second.rebooted).toBe(false);
    expect(second.said).toContain(`peer ns3 of reboot set dns does not answer on 127.0.0.2 port ${closedPort}; the reboot carries over`);
    const first = await rebootAt(now, [closedPort, ports.ns3]);
    expect(first.rebooted).toBe(false);
    expect(first.said).toContain('peer ns1 of reboot set dns does not answer');
  });

  it('does not reboot while a peer that answers on its port is not ready, and says why in the peer\'s words; reboots once it is', async () => {
    const now = OPENS + 3000;
    try {
      readiness.ns3 = [503, 'not ready 95 s after booting: ns3-dns (critical)'];
      const held = await rebootAt(now, [ports.ns1, ports.ns3]);
      expect(held.rebooted).toBe(false);
      expect(held.said).toContain('peer ns3 of reboot set dns is not ready (not ready 95 s after booting: ns3-dns (critical)); the reboot carries over');
      // Any answer but 200 holds the reboot, even one that says nothing.
      readiness.ns3 = [500, ''];
      expect((await rebootAt(now, [ports.ns1, ports.ns3])).rebooted).toBe(false);
      readiness.ns3 = [200, 'ready'];
      expect((await rebootAt(now, [ports.ns1, ports.ns3])).rebooted).toBe(true);
    } finally {
      readiness.ns3 = [200, 'ready'];
    }
  });

  it('does not reboot when a peer answers on its port but nothing answers on its readiness port (an older generation, a stopped socket)', async () => {
    const now = OPENS + 3000;
    // ns1 on 127.0.0.3: it answers on its port, but nothing listens on the readiness port there.
    const [lonely, port] = await listen('127.0.0.3');
    try {
      const r = await rebootAt(now, [port, ports.ns3], { ns1: '127.0.0.3', ns3: ADDRESSES.ns3 });
      expect(r.rebooted).toBe(false);
      expect(r.said).toMatch(/peer ns1 of reboot set dns is not ready \(no answer on port \d+: curl: \(7\) Failed to connect/);
    } finally {
      await new Promise((resolve) => lonely.close(resolve));
    }
  });

  it('does not reboot on a "ready" that its pinned peer did not sign over this run\'s nonce: unsigned, by another key, or replayed', async () => {
    const now = OPENS + 3000;
    try {
      for (const how of ['none', 'impostor', 'replay'] as const) {
        signing.ns3 = how;
        const r = await rebootAt(now, [ports.ns1, ports.ns3]);
        expect(`${how}: ${r.rebooted}`).toBe(`${how}: false`);
        expect(r.said).toContain('peer ns3 of reboot set dns says it is ready, but not signed with its pinned host key over this run\'s nonce (an impostor at 127.0.0.2, or a peer on an older generation); the reboot carries over');
      }
      // A peer of the policy whose key it does not pin is taken at its word.
      signing.ns3 = 'none';
      expect((await rebootAt(now, [ports.ns1, ports.ns3], ADDRESSES, ['ns3'])).rebooted).toBe(true);
      signing.ns3 = 'own';
      expect((await rebootAt(now, [ports.ns1, ports.ns3])).rebooted).toBe(true);
    } finally {
      signing.ns3 = 'own';
    }
  });

  it('asks a provisioned peer only at the address bin/apply pinned, and believes only its pinned rotated key; before the pin, it does not reboot', async () => {
    const now = OPENS + 3000;
    // Nothing pinned yet: ns3 is not asked at all (no address to ask), and the reboot carries over.
    const early = await rebootAt(now, [ports.ns1, ports.ns3], ADDRESSES, [], { ns3: null });
    expect(early.rebooted).toBe(false);
    expect(early.said).toMatch(/peer ns3 of reboot set dns is provisioned, and bin\/apply has not pinned its address and host key on this host \(\S+\/state\/peers\); the reboot carries over/);
    // Pinned at its address with its own key: its signed "ready" is believed.
    expect((await rebootAt(now, [ports.ns1, ports.ns3], ADDRESSES, [], { ns3: { address: ADDRESSES.ns3, key: 'ns3' } })).rebooted).toBe(true);
    // Asked at the pinned address, not elsewhere: pinned where nothing listens, it does not answer.
    const elsewhere = await rebootAt(now, [ports.ns1, ports.ns3], ADDRESSES, [], { ns3: { address: '127.0.0.4', key: 'ns3' } });
    expect(elsewhere.rebooted).toBe(false);
    expect(elsewhere.said).toContain(`peer ns3 of reboot set dns does not answer on 127.0.0.4 port ${ports.ns3}; the reboot carries over`);
    // The answer at the pinned address signed by another key than the pinned one (say, the
    // bootstrap key from user_data, which others may know), or not signed: not believed.
    try {
      for (const how of ['none', 'impostor', 'replay'] as const) {
        signing.ns3 = how;
        const r = await rebootAt(now, [ports.ns1, ports.ns3], ADDRESSES, [], { ns3: { address: ADDRESSES.ns3, key: 'ns3' } });
        expect(`${how}: ${r.rebooted}`).toBe(`${how}: false`);
        expect(r.said).toContain("peer ns3 of reboot set dns says it is ready, but not signed with its pinned host key over this run's nonce");
      }
    } finally {
      signing.ns3 = 'own';
    }
    expect((await rebootAt(now, [ports.ns1, ports.ns3], ADDRESSES, [], { ns3: { address: ADDRESSES.ns3, key: 'impostor' } })).rebooted).toBe(false);
  });
});
