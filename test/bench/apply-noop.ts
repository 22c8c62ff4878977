// Benchmark: a no-op bin/apply over a real fleet of 4 hosts (20 unit files, 10 timers each), side
// by side in one run with
//   (a) an equivalent Ansible playbook (copy every file, enable and start every timer) on the same
//       hosts with the same pinned known_hosts, default settings and with pipelining, and
//   (b) the floor: one bare ssh command per host, in parallel, hashing the same files and asking
//       systemd about the same timers.
//
//   npx tsx test/bench/apply-noop.ts
//
// Needs the test fleet (root, `sh test/setup.sh`) and ansible-playbook on PATH (apt-get install
// ansible-core: a benchmark baseline, not a test, so test/setup.sh does not install it).

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { runApply } from '../../lib/cli/apply.ts';
import type { PlanDocument } from '../../lib/plan/plan-format.ts';
import { writeFixturePlan } from '../fixtures/plan-dir.ts';
import { addressesOf } from '../fleet/apply-helpers.ts';
import { fleetSupport, startFleet, type TestFleet } from '../fleet/testbed.ts';

const HOSTS = ['stage1', 'web1', 'web2', 'web3'];
const TIMERS = 10;
const RUNS = 3;

const devNull = () => new Writable({ write: (_chunk, _encoding, done) => done() });

function run(program: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await fn();
  return { ms: performance.now() - started, value };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

async function noopApply(fleet: TestFleet, dir: string): Promise<{ ms: number; roundTrips: Record<string, number> }> {
  const { ms, value } = await timed(() => runApply([dir, '--identity', fleet.identityFile, '--skip-soak'], { stdout: devNull(), stderr: devNull() }));
  if (value.exitCode !== 0) throw new Error(`no-op apply exited ${value.exitCode}`);
  return { ms, roundTrips: { ...value.roundTrips } };
}

/** One plain ssh per host, all at once: hash the managed files, ask systemd about the timers. */
async function floor(fleet: TestFleet, plan: PlanDocument): Promise<number> {
  const { ms } = await timed(() =>
    Promise.all(
      fleet.hosts.map(async (host) => {
        const planned = plan.hosts[host.name] as PlanDocument['hosts'][string];
        const command = `sha256sum ${planned.files.map((f) => f.path).join(' ')} && systemctl is-enabled ${planned.units.join(' ')} && systemctl is-active ${planned.units.join(' ')}`;
        const result = await run('ssh', [...fleet.sshOptions, '-o', 'ControlMaster=no', '-o', 'ControlPath=none', `root@${host.address}`, command]);
        if (result.code !== 0) throw new Error(`${host.name}: floor command failed: ${result.stderr}`);
      }),
    ),
  );
  return ms;
}

/** The same desired state as an Ansible play: copy every file, enable and start every timer. */
function writeAnsible(fleet: TestFleet, plan: PlanDocument, planDir: string, work: string): { inventory: string; playbook: string } {
  const hosts: Record<string, unknown> = {};
  for (const host of fleet.hosts) {
    const planned = plan.hosts[host.name] as PlanDocument['hosts'][string];
    hosts[host.name] = {
      ansible_host: host.address,
      ansible_user: 'root',
      ansible_ssh_private_key_file: fleet.identityFile,
      ansible_ssh_common_args: `-o UserKnownHostsFile=${fleet.knownHostsFile} -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes`,
      ansible_python_interpreter: '/usr/bin/python3',
      managed_files: planned.files.map((f) => ({ path: f.path, mode: f.mode })),
      timers: planned.units,
    };
  }
  const inventory = join(work, 'inventory.yml');
  writeFileSync(inventory, stringify({ fleet: { hosts } }));
  const playbook = join(work, 'noop.yml');
  writeFileSync(
    playbook,
    stringify([
      {
        hosts: 'fleet',
        gather_facts: false,
        tasks: [
          {
            name: 'managed files',
            'ansible.builtin.copy': { src: `${planDir}/hosts/{{ inventory_hostname }}{{ item.path }}`, dest: '{{ item.path }}', mode: '{{ item.mode }}', owner: 'root', group: 'root' },
            loop: '{{ managed_files }}',
            notify: 'daemon-reload',
          },
          { name: 'timers enabled and started', 'ansible.builtin.systemd': { name: '{{ item }}', enabled: true, state: 'started' }, loop: '{{ timers }}' },
        ],
        handlers: [{ name: 'daemon-reload', 'ansible.builtin.systemd': { daemon_reload: true } }],
      },
    ]),
  );
  return { inventory, playbook };
}

async function ansible(files: { inventory: string; playbook: string }, pipelining: boolean): Promise<number> {
  const env = { ...process.env, ANSIBLE_HOST_KEY_CHECKING: 'True', ANSIBLE_FORKS: String(HOSTS.length), ANSIBLE_PIPELINING: pipelining ? 'True' : 'False', ANSIBLE_NOCOLOR: '1' };
  const { ms, value } = await timed(() => run('ansible-playbook', ['-i', files.inventory, files.playbook], env));
  if (value.code !== 0) throw new Error(`ansible-playbook failed (${value.code}):\n${value.stdout.slice(-2000)}\n${value.stderr.slice(-2000)}`);
  const recap = value.stdout.slice(value.stdout.indexOf('PLAY RECAP'));
  if (!/changed=0/.test(recap) || /changed=[1-9]/.test(recap)) throw new Error(`the Ansible run was not a no-op:\n${recap}`);
  return ms;
}

async function main(): Promise<void> {
  const support = fleetSupport();
  if (!support.ok) throw new Error(`the test fleet cannot run here: ${support.reason}`);
  const work = mkdtempSync(join(tmpdir(), 'upkeep-bench-apply-'));
  const fleet = await startFleet(HOSTS);
  try {
    const planDir = join(work, 'plan');
    const plan = await writeFixturePlan(planDir, { hosts: addressesOf(fleet), timers: TIMERS });
    const unitFiles = (plan.hosts.web1?.files ?? []).filter((f) => f.path.startsWith('/etc/systemd/system/upkeep-fixture-')).length;
    process.stderr.write(`fleet up: ${HOSTS.length} hosts, ${unitFiles} unit files and ${TIMERS} timers each (+ a check unit and a config file)\n`);
    process.stderr.write('first apply (installs everything)\n');
    const first = await runApply([planDir, '--identity', fleet.identityFile, '--skip-soak'], { stdout: devNull(), stderr: devNull() });
    if (first.exitCode !== 0) throw new Error(`first apply exited ${first.exitCode}`);

    const applies: number[] = [];
    let roundTrips: Record<string, number> = {};
    const floors: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      process.stderr.write(`no-op apply and floor, run ${i + 1}/${RUNS}\n`);
      const noop = await noopApply(fleet, planDir);
      applies.push(noop.ms);
      roundTrips = noop.roundTrips;
      floors.push(await floor(fleet, plan));
    }
    const files = writeAnsible(fleet, plan, planDir, work);
    process.stderr.write('ansible-playbook, default settings\n');
    const ansibleDefault = await ansible(files, false);
    process.stderr.write('ansible-playbook, pipelining\n');
    const ansiblePipelined = await ansible(files, true);

    const apply = median(applies);
    const bare = median(floors);
    const lines = [
      `no-op apply over ${HOSTS.length} hosts (${unitFiles} unit files, ${TIMERS} timers each), median of ${RUNS}:`,
      `  bin/apply                    ${(apply / 1000).toFixed(2)} s   ssh round trips per host: ${Object.entries(roundTrips).map(([h, n]) => `${h}=${n}`).join(' ')}`,
      `  floor (bare parallel ssh)    ${(bare / 1000).toFixed(2)} s`,
      `  ansible-playbook             ${(ansibleDefault / 1000).toFixed(2)} s (one run)`,
      `  ansible-playbook pipelining  ${(ansiblePipelined / 1000).toFixed(2)} s (one run)`,
      `  bin/apply / floor            ${(apply / bare).toFixed(2)}x`,
      `  ansible / bin/apply          ${(ansibleDefault / apply).toFixed(1)}x (pipelining: ${(ansiblePipelined / apply).toFixed(1)}x)`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await fleet.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`apply-noop benchmark: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
