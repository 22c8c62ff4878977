// The update wave's choice of what to promote, from what the staging hosts report, and the wave's
// order of installs, gates and promotion against fake hosts (on real hosts with real packages:
// test/fleet/update-promotion.test.ts).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Journal } from '../../lib/apply/journal.ts';
import { parsePromoteReport, parseStaged, promotable, updateWave, type StagedPackage, type UpdateWaveOptions } from '../../lib/apply/update-wave.ts';
import type { Transport } from '../../lib/hosts/transport.ts';
import type { PlanDocument } from '../../lib/plan/plan-format.ts';

const pkg = (name: string, version: string, kind: 'security' | 'routine' = 'security', cls: StagedPackage['class'] = 'small', ageSeconds = 100): StagedPackage => ({ name, version, kind, class: cls, ageSeconds });
const hosts = (entries: Record<string, StagedPackage[]>) => new Map(Object.entries(entries));

describe('promotable', () => {
  it('promotes what every staging host runs before and after the soak, of the wave\'s kind', () => {
    const before = hosts({ stage1: [pkg('openssl', '3.0.1'), pkg('tzdata', '2026b', 'routine')], stage2: [pkg('openssl', '3.0.1', 'security', 'restart', 50)] });
    expect(promotable('security', before, before)).toEqual({ packages: [pkg('openssl', '3.0.1', 'security', 'restart', 50)], dropped: [] });
    expect(promotable('routine', before, before).packages.map((p) => p.name)).toEqual(['openssl', 'tzdata']);
  });

  it('drops a version a staging host moved past during the soak', () => {
    const before = hosts({ stage1: [pkg('openssl', '3.0.1')] });
    const after = hosts({ stage1: [pkg('openssl', '3.0.2')] });
    expect(promotable('security', before, after)).toEqual({ packages: [], dropped: ['openssl 3.0.1: stage1 no longer runs it after the soak'] });
  });

  it('drops a package the staging hosts run in different versions', () => {
    const before = hosts({ stage1: [pkg('openssl', '3.0.1')], stage2: [pkg('openssl', '3.0.2')] });
    expect(promotable('security', before, before)).toEqual({ packages: [], dropped: ['openssl: staging hosts run different versions (3.0.1, 3.0.2)'] });
  });
});

describe('parseStaged', () => {
  it('reads "name version kind class age" lines and refuses anything else, naming the host', () => {
    expect(parseStaged('stage1', 'openssl 3.0.1-1+deb12u1 security reboot 42\n')).toEqual([pkg('openssl', '3.0.1-1+deb12u1', 'security', 'reboot', 42)]);
    expect(() => parseStaged('stage1', 'openssl 3.0.1;rm -rf / security small 1\n')).toThrow(/^stage1: unexpected line from updates.sh staged/);
    expect(() => parseStaged('stage1', 'openssl 3.0.1 security sometimes 1\n')).toThrow(/stage1/);
  });
});

describe('parsePromoteReport', () => {
  it('reads what a production host installed, left for its window and skipped because its policy holds it', () => {
    expect(parsePromoteReport('held postgresql-15 15.2-1\ndeferred linux-image-amd64 6.1.1 reboot\ninstalled openssl 3.0.1\n')).toEqual({
      installed: ['openssl 3.0.1'],
      deferred: ['linux-image-amd64 6.1.1 reboot'],
      held: ['postgresql-15 15.2-1'],
    });
  });
});

// The wave itself against fake hosts: each answers the runtime's commands (updates.sh, in-window.sh,
// the agent's health gate) from a few facts, so the order of installs, gates and promotion, and
// what is promoted, can be read off the scripts the hosts were sent.

interface FakeHost {
  /** `updates.sh staged` lines ("name version kind class age"): what the host runs that staging installed. */
  staged?: string;
  /** What `updates.sh KIND` on staging adds to `staged` (routine: only with the window open). */
  installs?: string;
  windowOpen?: boolean;
  /** The health gate's answer (agent lines); the default is a healthy host. */
  health?: string;
  /** The health gate cannot reach the host. */
  unreachable?: boolean;
}

const CHECK_UNIT = 'upkeep-check-web.service';
const HEALTHY = `check ${CHECK_UNIT} success 0\nsystem running\n`;
const CRITICAL = `check ${CHECK_UNIT} success 2\nsystem running\n`;

function wavePlan(staging: readonly string[], production: readonly string[], soakSeconds = 3600): PlanDocument {
  const files = [{ path: '/etc/upkeep/updates.env' }, { path: `/etc/systemd/system/${CHECK_UNIT}` }];
  const host = (name: string, group: string) => ({ name, group, port: 22, files, units: [], packages: [] });
  return {
    plan_id: 'f'.repeat(64),
    fleet: 'test',
    groups: [
      { name: 'staging', staging: true, hosts: [...staging], batchSize: 1, soakSeconds, failureBudget: 0, after: [] },
      { name: 'production', staging: false, hosts: [...production], batchSize: 1, soakSeconds: 0, failureBudget: 0, after: ['staging'] },
    ],
    hosts: Object.fromEntries([...staging.map((h) => [h, host(h, 'staging')]), ...production.map((h) => [h, host(h, 'production')])]),
  } as unknown as PlanDocument;
}

async function runFakeWave(kind: 'security' | 'routine', plan: PlanDocument, fleet: Record<string, FakeHost>, extra: Partial<UpdateWaveOptions> = {}) {
  const sent: string[] = [];
  const say = (stdout: string) => ({ exitCode: 0, stdout, stderr: '' });
  const transport = (host: string): Transport => ({
    host,
    roundTrips: 0,
    close: async () => undefined,
    run: async (script: string, input?: string | Uint8Array) => {
      const fake = fleet[host] as FakeHost;
      if (script.includes("set -- 'health'")) {
        sent.push(`${host} health-gate`);
        if (fake.unreachable) return { exitCode: 255, stdout: '', stderr: `ssh: connect to host ${host} port 22: No route to host` };
        return say(fake.health ?? HEALTHY);
      }
      if (script.includes("set -- 'read-state'")) return say('system running\n');
      if (script.includes('updates.sh staged')) return say(fake.staged ?? '');
      if (script.includes('updates.sh promote')) {
        sent.push(`${host} promote ${String(input).trim().replaceAll('\n', ', ')}`);
        return say(String(input).split('\n').filter(Boolean).map((l) => `installed ${l.split(' ').slice(0, 2).join(' ')}\n`).join(''));
      }
      if (script.includes(`updates.sh ${kind}`)) {
        if (kind === 'routine' && !fake.windowOpen) {
          sent.push(`${host} install-${kind}: window closed`);
          return say('window closed\n');
        }
        sent.push(`${host} install-${kind}`);
        fake.staged = `${fake.staged ?? ''}${fake.installs ?? ''}`;
        return say('');
      }
      throw new Error(`${host}: the fake host does not know ${script.slice(0, 80)}`);
    },
  });
  const dir = mkdtempSync(join(tmpdir(), 'upkeep-wave-'));
  try {
    const journal = new Journal({ file: join(dir, 'journal.json'), planId: plan.plan_id, fleet: plan.fleet });
    const lines: string[] = [];
    const result = await updateWave({ plan, kind, transport, journal, progress: (line) => lines.push(line), sleep: async () => undefined, ...extra });
    return { result, sent, progress: lines.join('\n'), journal: journal.document() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('updateWave: staging is gated right before promotion', () => {
  // Staging's own hourly timer installed the fix two hours ago, longer than the soak: the wave
  // installs nothing new on staging and has nothing left to wait for.
  const fixedByTheTimer = 'openssl 3.0.15-1 security small 7200\n';

  it('does not promote a fix staging\'s own timer installed when staging fails its health gate now', async () => {
    const run = await runFakeWave('security', wavePlan(['stage1'], ['web1']), { stage1: { staged: fixedByTheTimer, health: CRITICAL }, web1: {} });
    expect(run.result.exitCode).toBe(1);
    expect(run.result.promoted).toEqual([]);
    expect(run.sent).toEqual(['stage1 install-security', 'stage1 health-gate']);
    expect(run.result.stoppedBecause).toMatch(/staging host\(s\) failed their health gate before promotion; nothing is promoted/);
    expect(run.result.hosts.find((h) => h.host === 'stage1')).toMatchObject({ status: 'failed', detail: expect.stringContaining(`check ${CHECK_UNIT} is CRITICAL`) });
    expect(run.journal.entries.filter((e) => e.step === 'promote')).toEqual([]);
  });

  it('does not promote when a staging host running the version cannot be reached for its gate', async () => {
    const run = await runFakeWave('security', wavePlan(['stage1', 'stage2'], ['web1']), { stage1: { staged: fixedByTheTimer }, stage2: { staged: fixedByTheTimer, unreachable: true }, web1: {} });
    expect(run.result.exitCode).toBe(1);
    expect(run.result.promoted).toEqual([]);
    expect(run.sent.filter((s) => s.includes('promote'))).toEqual([]);
    expect(run.result.hosts.find((h) => h.host === 'stage2')).toMatchObject({ status: 'failed', detail: expect.stringContaining('No route to host') });
  });

  it('does not promote a routine update staging installed in its last window when staging fails its gate now (window closed)', async () => {
    const run = await runFakeWave('routine', wavePlan(['stage1'], ['web1']), { stage1: { staged: 'tzdata 2026b-1 routine small 86400\n', windowOpen: false, health: 'system degraded\nfailed nginx.service\n' }, web1: {} });
    expect(run.result.exitCode).toBe(1);
    expect(run.sent).toEqual(['stage1 install-routine: window closed', 'stage1 health-gate']);
    expect(run.result.hosts.find((h) => h.host === 'stage1')?.detail).toContain('nginx.service');
  });

  it('blocks promotion on any check failing on staging now, even one that could not run: there is no "before" to excuse it', async () => {
    // No "before" exists for a version the timer installed; a check failing on staging now is
    // a check the version has not passed, whoever broke it.
    const run = await runFakeWave('security', wavePlan(['stage1'], ['web1']), { stage1: { staged: fixedByTheTimer, health: `check ${CHECK_UNIT} failed 1\nsystem running\n` }, web1: {} });
    expect(run.result.exitCode).toBe(1);
    expect(run.result.promoted).toEqual([]);
  });

  it('promotes once every staging host running the version passes its gate, which comes after the soak and before production', async () => {
    const run = await runFakeWave('security', wavePlan(['stage1', 'stage2'], ['web1']), {
      stage1: { staged: fixedByTheTimer },
      // stage2 installs the fix in this wave: it is gated after its install, soaks, and is gated again.
      stage2: { installs: 'openssl 3.0.15-1 security small 0\n', health: `check ${CHECK_UNIT} success 1\nsystem running\n` },
      web1: {},
    });
    expect(run.result.exitCode).toBe(0);
    expect(run.result.promoted.map((p) => `${p.name} ${p.version}`)).toEqual(['openssl 3.0.15-1']);
    expect(run.sent).toEqual([
      'stage1 install-security',
      'stage2 install-security',
      'stage2 health-gate',
      'stage1 health-gate',
      'stage2 health-gate',
      'web1 promote openssl 3.0.15-1 security small',
      'web1 health-gate',
    ]);
    const steps = run.journal.entries.map((e) => `${e.host} ${e.step}`);
    expect(steps.indexOf('(fleet) soak')).toBeLessThan(steps.indexOf('stage1 health-gate'));
    expect(steps.indexOf('stage1 health-gate')).toBeLessThan(steps.indexOf('(fleet) promote'));
    // A WARNING passes the gate and is said.
    expect(run.progress).toContain(`check ${CHECK_UNIT} is WARNING`);
  });

  it('does not hold promotion for a staging host that runs none of the versions promoted', async () => {
    const run = await runFakeWave('security', wavePlan(['stage1', 'stage2'], ['web1']), { stage1: { staged: fixedByTheTimer }, stage2: { health: CRITICAL }, web1: {} });
    expect(run.result.exitCode).toBe(0);
    expect(run.sent).toContain('web1 promote openssl 3.0.15-1 security small');
    expect(run.sent).not.toContain('stage2 health-gate');
  });

  it('gates staging before promotion with --skip-soak too', async () => {
    const run = await runFakeWave('security', wavePlan(['stage1'], ['web1']), { stage1: { installs: 'openssl 3.0.15-1 security small 0\n' }, web1: {} }, { skipSoak: true });
    expect(run.result.exitCode).toBe(0);
    expect(run.sent).toEqual(['stage1 install-security', 'stage1 health-gate', 'stage1 health-gate', 'web1 promote openssl 3.0.15-1 security small', 'web1 health-gate']);
  });
});
