// upkeep restore: files from a host's backups, started from the operator's machine in one ssh
// round trip. The host's own backup.sh does the work (it has the repository settings, its key and
// its password), so nothing secret crosses the operator's machine.

import { parseArgs } from 'node:util';
import { RUNTIME_DIR } from '../compile/desired-state.ts';
import { shellQuote } from '../compile/env-file.ts';
import { Connections } from '../hosts/connections.ts';
import { buildInventory } from '../hosts/inventory.ts';
import { readPlanDir } from '../plan/plan-dir.ts';
import { runWholeRestore } from './restore-whole.ts';
import { exitWith, isMain } from './run-command.ts';

const HELP = `Usage: upkeep restore HOST PATH... --plan DIR [--at TIME | --snapshot ID] [--to DIR]
       upkeep restore HOST --list --plan DIR
       upkeep restore HOST --whole --onto ADDRESS --plan DIR [--snapshot ID] [-- APPLY_OPTION...]

Restores files and folders of HOST from its backups, on HOST: each absolute PATH (with everything
under it) from the newest snapshot up to TIME that holds every PATH (TIME in date(1) syntax, e.g.
"2026-11-28 18:00" or "yesterday 12:00"; now by default), or from snapshot ID. A newer snapshot
that lacks a PATH (the backup after the deletion, a rebuilt host's first one) is never used
silently: it is skipped and named. Files are put back in place (existing ones overwritten) unless
--to DIR names a directory on HOST to restore under (DIR/PATH). Prints the snapshot used.

With --whole, HOST was lost: the newest snapshot its backup job made (or snapshot ID) is read on
its backup host, as root there, and unpacked into / of the freshly installed machine at ADDRESS,
which keeps its own machine-id, hostname, hosts, fstab, ssh host keys and network configuration
(resolv.conf too);
then the plan is applied (bin/apply PLAN_DIR APPLY_OPTION...). The plan must already name ADDRESS
and the new machine's host key for HOST (edit the policy, run bin/plan). The new machine gets no
login on the backup host and no repository password.

Options:
  --plan DIR          the plan directory last applied (where HOST is and its pinned host key)
  --at TIME           the newest snapshot up to this time
  --snapshot ID       this snapshot (an id or its prefix, as --list shows)
  --to DIR            restore under DIR on HOST instead of in place
  --list              list HOST's snapshots
  --whole             restore all of a lost HOST onto a new machine (with --onto)
  --onto ADDRESS      the new machine: HOST's address in the plan
  --identity KEY      ssh private key for root on HOST
  --known-hosts FILE  pin host keys from this file instead of the plan's
  -h, --help          this text

Exit codes: 0 restored (or listed), 1 failed (nothing found, refused, unreachable).
`;

/** The one command HOST runs: backup.sh with every argument quoted. */
export function restoreCommand(options: { readonly paths: readonly string[]; readonly at?: string; readonly snapshot?: string; readonly to?: string; readonly list?: boolean }): string {
  if (options.list) return `exec ${RUNTIME_DIR}/backup.sh snapshots`;
  if (options.paths.length === 0) throw new Error('name the absolute paths to restore (or --list)');
  if (options.at !== undefined && options.snapshot !== undefined) throw new Error('give --at or --snapshot, not both');
  for (const path of options.paths) if (!path.startsWith('/')) throw new Error(`${JSON.stringify(path)} is not an absolute path`);
  if (options.to !== undefined && !options.to.startsWith('/')) throw new Error(`--to ${JSON.stringify(options.to)} is not an absolute path`);
  const args = [
    ...(options.at !== undefined ? ['--at', options.at] : []),
    ...(options.snapshot !== undefined ? ['--snapshot', options.snapshot] : []),
    ...(options.to !== undefined ? ['--to', options.to] : []),
    '--',
    ...options.paths,
  ];
  return `exec ${RUNTIME_DIR}/backup.sh restore ${args.map(shellQuote).join(' ')}`;
}

export interface RestoreIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

/** Runs `upkeep restore` with `argv`; resolves to the exit code. */
export async function runRestore(argv: readonly string[], io: RestoreIo = process): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      plan: { type: 'string' },
      at: { type: 'string' },
      snapshot: { type: 'string' },
      to: { type: 'string' },
      list: { type: 'boolean', default: false },
      whole: { type: 'boolean', default: false },
      onto: { type: 'string' },
      identity: { type: 'string' },
      'known-hosts': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  const [host, ...paths] = positionals;
  if (host === undefined) throw new Error('name the host to restore (see upkeep restore --help)');
  if (values.plan === undefined) throw new Error('--plan DIR is required: the plan directory last applied says where the host is and pins its key');
  if (values.whole || values.onto !== undefined) {
    if (!values.whole || values.onto === undefined) throw new Error('--whole and --onto ADDRESS go together');
    if (values.at !== undefined || values.to !== undefined || values.list) throw new Error('--whole takes --snapshot only, not --at, --to or --list');
    return runWholeRestore({ host, onto: values.onto, plan: values.plan, applyArgs: paths, ...(values.snapshot !== undefined && { snapshot: values.snapshot }), ...(values.identity !== undefined && { identity: values.identity }) }, io);
  }
  const command = restoreCommand({ paths, list: values.list, ...(values.at !== undefined && { at: values.at }), ...(values.snapshot !== undefined && { snapshot: values.snapshot }), ...(values.to !== undefined && { to: values.to }) });
  const { document } = await readPlanDir(values.plan);
  if (!Object.hasOwn(document.hosts, host)) throw new Error(`${host} is not a host of the plan in ${values.plan}`);
  const inventory = buildInventory(document, { externalKnownHosts: values['known-hosts'] !== undefined });
  const connections = new Connections(inventory, { ...(values.identity && { identity: values.identity }), ...(values['known-hosts'] && { knownHosts: values['known-hosts'] }) });
  try {
    const result = await connections.connect(host).run(command, undefined, { timeoutMs: 24 * 3600_000 });
    io.stdout.write(result.stdout);
    io.stderr.write(result.stderr);
    if (result.exitCode !== 0) io.stderr.write(`upkeep restore: ${host}: backup.sh exited ${result.exitCode}\n`);
    return result.exitCode === 0 ? 0 : 1;
  } finally {
    await connections.close();
  }
}

if (isMain(import.meta.url)) exitWith('upkeep restore', runRestore(process.argv.slice(2)));
