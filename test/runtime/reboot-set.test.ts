// reboot.sh as a member of a reboot set, at the edges of its slot and with peers that answer or not.
// The peers are real TCP listeners (and a closed port) on this machine; only systemctl is a FAKE
// (no systemd as PID 1 here), recording the reboot it was asked for.

import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderEnvFile } from '../../lib/compile/env-file.ts';
import { rebootSetEnv } from '../../lib/compile/reboot-set.ts';
import { windowEnv } from '../../lib/compile/updates.ts';
import { rebootSlot } from '../../lib/policy/reboot-slot.ts';
import { sundayWindow } from '../fixtures/resolved-fleet.ts';
import { runScript, tempDir } from './run-script.ts';

/** Sunday 2026-11-08 02:00 Europe/Berlin (winter time), when sundayWindow (2 h) opens. */
const OPENS = Date.parse('2026-11-08T01:00:00Z') / 1000;

async function listen(): Promise<[Server, number]> {
  const server = createServer((socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return [server, (server.address() as { port: number }).port];
}

describe('reboot.sh in a reboot set (FAKE systemctl)', () => {
  let up: Server;
  let upPort: number;
  let closedPort: number;
  beforeAll(async () => {
    [up, upPort] = await listen();
    const [closed, port] = await listen();
    closedPort = port;
    await new Promise((resolve) => closed.close(resolve));
  });
  afterAll(() => new Promise((resolve) => up.close(resolve)));

  /** A fresh host, slot 2 of 3, whose peers listen on `ports`; runs reboot.sh at `now`, returns what it said and whether it rebooted. */
  function rebootAt(now: number, ports: number[]) {
    const dir = tempDir();
    mkdirSync(join(dir, 'etc'));
    mkdirSync(join(dir, 'state'));
    mkdirSync(join(dir, 'bin'));
    writeFileSync(join(dir, 'etc/window.env'), windowEnv(sundayWindow));
    writeFileSync(join(dir, 'etc/updates.env'), renderEnvFile('test', { UPKEEP_PACKAGE_FAMILY: 'apt', UPKEEP_REBOOT: 'always' }));
    const peers = ports.map((port, i) => ({ host: `ns${i === 0 ? 1 : 3}`, address: '127.0.0.1', port }));
    writeFileSync(join(dir, 'etc/reboot-set.env'), rebootSetEnv(sundayWindow, { set: 'dns', index: 1, count: 3, peers }));
    writeFileSync(join(dir, 'state/routine-last-opening'), '2026-11-08\n');
    writeFileSync(join(dir, 'bin/systemctl'), `#!/bin/sh\necho "systemctl $*" >> '${dir}/calls'\n`);
    chmodSync(join(dir, 'bin/systemctl'), 0o755);
    const run = runScript('reboot.sh', [], { PATH: `${join(dir, 'bin')}:${process.env.PATH}`, UPKEEP_CONFIG_DIR: join(dir, 'etc'), UPKEEP_STATE_DIR: join(dir, 'state'), UPKEEP_NOW: String(now) });
    expect(run.status, run.stderr).toBe(0);
    const calls = existsSync(join(dir, 'calls')) ? readFileSync(join(dir, 'calls'), 'utf8') : '';
    return { said: run.stdout, rebooted: calls === 'systemctl reboot\n' };
  }

  it('begins a reboot only from the start of its slot to the middle of it, to the second', () => {
    const slot = rebootSlot(sundayWindow.durationSeconds, 1, 3);
    expect(slot).toEqual({ startSeconds: 2400, beginBySeconds: 3600, endSeconds: 4800 });
    const both = [upPort, upPort];
    for (const [offset, rebooted] of [[0, false], [slot.startSeconds - 1, false], [slot.startSeconds, true], [slot.beginBySeconds - 1, true], [slot.beginBySeconds, false], [slot.endSeconds, false]] as const) {
      const r = rebootAt(OPENS + offset, both);
      expect(`${offset}: ${r.rebooted}`).toBe(`${offset}: ${rebooted}`);
      if (!rebooted) expect(r.said).toContain("outside this host's slot in reboot set dns");
    }
  });

  it('does not reboot, and says which peer, when any peer does not answer on its port', () => {
    const now = OPENS + 3000;
    expect(rebootAt(now, [upPort, upPort]).rebooted).toBe(true);
    const second = rebootAt(now, [upPort, closedPort]);
    expect(second.rebooted).toBe(false);
    expect(second.said).toContain(`peer ns3 of reboot set dns does not answer on 127.0.0.1 port ${closedPort}; the reboot carries over`);
    const first = rebootAt(now, [closedPort, upPort]);
    expect(first.rebooted).toBe(false);
    expect(first.said).toContain('peer ns1 of reboot set dns does not answer');
  });
});
