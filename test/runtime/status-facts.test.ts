// What hosts record for `upkeep status` and how status-facts.sh reads it back: run-check.sh keeps
// since when a check has been passing or failing and logs the alerts a route took;
// check-security-updates.sh keeps when pending fixes were first seen; status-facts.sh prints all of
// it (and backup.sh's, updates.sh's records) read-only, in the format lib/hosts/host-facts.ts parses.

import { mkdirSync, readFileSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderEnvFile } from '../../lib/compile/env-file.ts';
import { parseHostFacts } from '../../lib/hosts/host-facts.ts';
import { runScript, runScriptAsync, tempDir } from './run-script.ts';

describe('status-facts.sh reads what the host recorded', () => {
  it('prints every record in the format host-facts.ts parses, and nothing for what was never recorded', () => {
    const dir = tempDir();
    const state = join(dir, 'state');
    mkdirSync(join(state, 'backup'), { recursive: true });
    mkdirSync(join(state, 'checks'));
    writeFileSync(join(state, 'manifest'), 'upkeep-manifest 1\ngeneration abc123\nplan 0f0f\nprevious none\nfile 1 0644 root:root /etc/x\n');
    writeFileSync(join(state, 'routine-last-opening'), '2026-11-29 02:00\n');
    utimesSync(join(state, 'routine-last-opening'), 1_700_000_000, 1_700_000_000);
    writeFileSync(join(state, 'backup', 'backup.status'), '1700000100 ok snapshot saved\n');
    writeFileSync(join(state, 'backup', 'drill.status'), '1700000200 failed 2 of 20 sampled files were not restored\n');
    writeFileSync(join(state, 'checks', 'web1-disk'), 'failures=3\nsuccesses=0\nalerted=1\nseverity=critical\nsince=1700000300\n');
    writeFileSync(join(state, 'checks', 'web1-disk.message'), 'CRITICAL: / is 97% full <b>\n');
    writeFileSync(join(state, 'checks', 'web1-security-updates'), 'failures=1\nsuccesses=0\nalerted=0\nseverity=warning\nsince=1700000400\n');
    writeFileSync(join(state, 'checks', 'security-pending'), '1700000400 2\n');
    writeFileSync(join(state, 'checks', 'reboot-pending-since'), '1700000500\n');
    // A damaged state file and a name that is no check id are not facts.
    writeFileSync(join(state, 'checks', 'web1-smart'), 'severity=$(reboot)\nfailures=x\n');
    writeFileSync(join(state, 'checks', 'Bad Name'), 'severity=ok\n');
    writeFileSync(join(state, 'checks', 'alerts.log'), '1700000360 web1-disk firing\ngarbage line here now\n1700000900 web1-disk resolved\n');
    utimesSync(join(state, 'checks', 'web1-disk'), 1_700_000_600, 1_700_000_600);
    writeFileSync(join(dir, 'reboot-required'), '');
    utimesSync(join(dir, 'reboot-required'), 1_700_000_450, 1_700_000_450);

    const run = runScript('status-facts.sh', [], { UPKEEP_STATE_DIR: state, UPKEEP_REBOOT_FLAG: join(dir, 'reboot-required') });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toBe('');
    const facts = parseHostFacts('web1', run.stdout);
    expect(facts).toMatchObject({
      generation: 'abc123',
      planId: '0f0f',
      routineRun: { at: 1_700_000_000, opening: '2026-11-29 02:00' },
      securityPending: { since: 1_700_000_400, count: 2 },
      rebootRequired: 1_700_000_450,
      rebootPendingSince: 1_700_000_500,
      backups: {
        backup: { at: 1_700_000_100, result: 'ok', detail: 'snapshot saved' },
        drill: { at: 1_700_000_200, result: 'failed', detail: '2 of 20 sampled files were not restored' },
      },
      alerts: [
        { at: 1_700_000_360, checkId: 'web1-disk', status: 'firing' },
        { at: 1_700_000_900, checkId: 'web1-disk', status: 'resolved' },
      ],
    });
    expect(facts.now).toBeGreaterThan(1_700_000_000);
    expect(facts.checks['web1-disk']).toEqual({ id: 'web1-disk', at: 1_700_000_600, severity: 'critical', since: 1_700_000_300, failures: 3, alerted: true, message: 'CRITICAL: / is 97% full <b>' });
    expect(facts.checks['web1-smart']).toMatchObject({ severity: 'unknown', failures: 0, since: null });
    expect(Object.keys(facts.checks).sort()).toEqual(['web1-disk', 'web1-security-updates', 'web1-smart']);
    expect(Object.keys(facts.backups).sort()).toEqual(['backup', 'drill']);
  });

  it('on a host upkeep never touched, says so and nothing else', () => {
    const dir = tempDir();
    const run = runScript('status-facts.sh', [], { UPKEEP_STATE_DIR: join(dir, 'none'), UPKEEP_REBOOT_FLAG: join(dir, 'none-flag') });
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^facts 1\nnow \d+\ngeneration none\n$/);
    expect(parseHostFacts('new1', run.stdout)).toMatchObject({ generation: null, routineRun: null, securityPending: null, checks: {}, backups: {}, alerts: [] });
  });

  it('an answer that is not the facts script\'s is an error naming the host', () => {
    expect(() => parseHostFacts('web1', 'Welcome to web1!\n')).toThrow(/^web1: the status facts script answered no "facts 1" line/);
  });
});

describe('the records status reads are kept by the runtime programs', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('run-check.sh keeps since when a check has been failing or passing, its message, and logs the alerts sent', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'ops.env'), renderEnvFile('route', { UPKEEP_ROUTE_KIND: 'webhook', UPKEEP_WEBHOOK: `${base}/hook` }));
    const check = (maxPercent: number) =>
      renderEnvFile('check', { UPKEEP_CHECK_ID: 'web1-disk', UPKEEP_CHECK_KIND: 'disk-usage', UPKEEP_CHECK_SUBJECT: 'web1', UPKEEP_CHECK_NAME: 'disk', UPKEEP_FAILURE_THRESHOLD: 2, UPKEEP_RECOVERY_THRESHOLD: 1, UPKEEP_ROUTES: 'ops', UPKEEP_DISK_MAX_PERCENT: maxPercent, UPKEEP_DISK_MOUNTS: '/' });
    // 0 % allowed: the disk is always "full"; 100 %: never.
    writeFileSync(join(dir, 'full.env'), check(0));
    writeFileSync(join(dir, 'fine.env'), check(100));
    const env = { UPKEEP_STATE_DIR: join(dir, 'state'), UPKEEP_ALERT_DIR: dir };
    const stateOf = () => Object.fromEntries(readFileSync(join(dir, 'state', 'checks', 'web1-disk'), 'utf8').trim().split('\n').map((l) => l.split('=')));

    expect((await runScriptAsync('run-check.sh', [join(dir, 'fine.env')], env)).status).toBe(0);
    const passingSince = Number(stateOf().since);
    expect(passingSince).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await runScriptAsync('run-check.sh', [join(dir, 'fine.env')], env)).status).toBe(0);
    expect(Number(stateOf().since)).toBe(passingSince);

    await runScriptAsync('run-check.sh', [join(dir, 'full.env')], env);
    const failingSince = Number(stateOf().since);
    expect(failingSince).toBeGreaterThan(passingSince);
    expect(existsSync(join(dir, 'state', 'checks', 'alerts.log'))).toBe(false);
    await new Promise((r) => setTimeout(r, 1100));
    await runScriptAsync('run-check.sh', [join(dir, 'full.env')], env);
    expect(stateOf()).toMatchObject({ severity: 'critical', since: String(failingSince), alerted: '1' });
    expect(readFileSync(join(dir, 'state', 'checks', 'web1-disk.message'), 'utf8')).toMatch(/^CRITICAL: /);
    const log = readFileSync(join(dir, 'state', 'checks', 'alerts.log'), 'utf8');
    expect(log).toMatch(/^\d+ web1-disk firing\n$/);
    expect(Number(log.split(' ')[0])).toBeGreaterThan(failingSince);

    await runScriptAsync('run-check.sh', [join(dir, 'fine.env')], env);
    expect(readFileSync(join(dir, 'state', 'checks', 'alerts.log'), 'utf8')).toMatch(/^\d+ web1-disk firing\n\d+ web1-disk resolved\n$/);
    expect(Number(stateOf().since)).toBeGreaterThan(failingSince);
  });

  it('run-check.sh keeps the alert log bounded: past 2,000 lines it keeps the newest 1,000', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'ops.env'), renderEnvFile('route', { UPKEEP_ROUTE_KIND: 'webhook', UPKEEP_WEBHOOK: `${base}/hook` }));
    writeFileSync(join(dir, 'full.env'), renderEnvFile('check', { UPKEEP_CHECK_ID: 'web1-disk', UPKEEP_CHECK_KIND: 'disk-usage', UPKEEP_CHECK_SUBJECT: 'web1', UPKEEP_CHECK_NAME: 'disk', UPKEEP_FAILURE_THRESHOLD: 1, UPKEEP_RECOVERY_THRESHOLD: 1, UPKEEP_ROUTES: 'ops', UPKEEP_DISK_MAX_PERCENT: 0, UPKEEP_DISK_MOUNTS: '/' }));
    const log = join(dir, 'state', 'checks', 'alerts.log');
    mkdirSync(join(dir, 'state', 'checks'), { recursive: true });
    writeFileSync(log, Array.from({ length: 2000 }, (_, i) => `${1700000000 + i} web1-disk ${i % 2 ? 'resolved' : 'firing'}\n`).join(''));
    await runScriptAsync('run-check.sh', [join(dir, 'full.env')], { UPKEEP_STATE_DIR: join(dir, 'state'), UPKEEP_ALERT_DIR: dir });
    const lines = readFileSync(log, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(1000);
    expect(lines[0]).toBe(`${1700000000 + 1001} web1-disk resolved`);
    expect(lines.at(-1)).toMatch(/^\d+ web1-disk firing$/);
    expect(Number(lines.at(-1)!.split(' ')[0])).toBeGreaterThan(1700002000);
  });

  it('check-security-updates.sh keeps when the oldest pending fix was first seen, and forgets it when none are left', () => {
    const dir = tempDir();
    // updates.sh records every pending update as "package version first-seen kind".
    const pending = join(dir, 'state', 'updates', 'pending');
    mkdirSync(join(dir, 'state', 'updates'), { recursive: true });
    const env = { UPKEEP_STATE_DIR: join(dir, 'state'), UPKEEP_PACKAGE_FAMILY: 'apt', UPKEEP_SECURITY_DEADLINE: '86400', UPKEEP_NOW: '1700050000' };
    const record = join(dir, 'state', 'checks', 'security-pending');
    writeFileSync(pending, 'libssl3 3.0.2 1700000000 security\nvim 9.1 1690000000 routine\n');
    expect(runScript('check-security-updates.sh', [], env).status).toBe(0);
    expect(readFileSync(record, 'utf8')).toBe('1700000000 1\n');
    // Seen this very second (age 0): still a pending fix within the deadline, not a broken check.
    const justSeen = runScript('check-security-updates.sh', [], { ...env, UPKEEP_NOW: '1700000000' });
    expect(justSeen.stdout).toMatch(/^OK: 1 security fix\(es\) pending, oldest libssl3 3\.0\.2 for 0m/);
    writeFileSync(pending, 'libssl3 3.0.2 1700000000 security\nopenssl 3.0.2 1700040000 security\n');
    expect(runScript('check-security-updates.sh', [], env).status).toBe(0);
    expect(readFileSync(record, 'utf8')).toBe('1700000000 2\n');
    // Past the deadline: CRITICAL, and the record still says since when.
    expect(runScript('check-security-updates.sh', [], { ...env, UPKEEP_NOW: String(1_700_000_000 + 86_401) }).status).toBe(2);
    expect(readFileSync(record, 'utf8')).toBe('1700000000 2\n');
    writeFileSync(pending, '');
    expect(runScript('check-security-updates.sh', [], env).status).toBe(0);
    expect(existsSync(record)).toBe(false);
  });
});
