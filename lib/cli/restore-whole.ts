// upkeep restore HOST --whole --onto ADDRESS: a lost host's newest scheduled snapshot restored onto
// a freshly installed machine, then the host's generation re-applied with bin/apply.
//
// The repository is read on the backup host itself, as its retention reads it: as the repository's
// own user, under restic's lock (so retention waits for the restore), with the password the host
// already holds for retention (/etc/upkeep/restic/clients/HOST.password). The new machine gets no
// login on the backup host and no repository password, so the append-only promise is untouched (no
// client key that can read, let alone delete, is created for the restore), and nothing secret
// crosses the operator's machine. The snapshot travels as a tar stream (restic dump) from the
// backup host through the operator's ssh to the new machine, which unpacks it into / while keeping
// what is its own: machine-id, hostname, hosts, fstab, ssh host keys, network configuration (with
// resolv.conf), backup client key.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { shellQuote } from '../compile/env-file.ts';
import { buildInventory, writeKnownHosts, type InventoryHost } from '../hosts/inventory.ts';
import type { PlanDocument } from '../plan/plan-format.ts';
import { readPlanDir } from '../plan/plan-dir.ts';
import { runApply } from './apply.ts';

/** What stays the new machine's own; tar --exclude patterns, relative to / as restic dump writes them. */
export const KEPT_ON_NEW_HOST: readonly string[] = [
  'etc/machine-id',
  'var/lib/dbus/machine-id',
  'etc/hostname',
  'etc/hosts',
  'etc/fstab',
  'etc/ssh/ssh_host_*',
  // The new machine's resolver (often a mount or symlink its network manager or container owns).
  'etc/resolv.conf',
  'etc/network/interfaces',
  'etc/network/interfaces.d',
  'etc/systemd/network',
  'etc/netplan',
  // The lost host's backup key may be in an attacker's hands: the new machine makes its own, and
  // the re-apply replaces the old one on the backup host.
  'var/lib/upkeep/backup/id_ed25519',
  'var/lib/upkeep/backup/id_ed25519.pub',
];

const HOST_NAME = /^[a-z0-9][a-z0-9-]*$/;

/** The backup host of `host`: the plan host that keeps its retention settings. */
export function backupHostOf(document: PlanDocument, host: string): string {
  const file = `/etc/upkeep/restic/clients/${host}.env`;
  const found = Object.values(document.hosts).filter((h) => h.files.some((f) => f.path === file));
  if (found.length !== 1) throw new Error(`${host}: no backup host of this plan keeps its repository (looked for ${file}); --whole restores only from a backup host of the fleet`);
  return (found[0] as { name: string }).name;
}

/** The backup host's command: prints the snapshot used on stderr, writes it as tar on stdout. */
export function dumpCommand(host: string, snapshot?: string): string {
  if (!HOST_NAME.test(host)) throw new Error(`${JSON.stringify(host)} is not a host name`);
  if (snapshot !== undefined && !/^[0-9a-f]{8,64}$/.test(snapshot)) throw new Error(`--snapshot ${JSON.stringify(snapshot)} is not a snapshot id`);
  const prune = `upkeep-backup-prune-${host}.service`;
  return [
    'set -eu',
    `. /etc/upkeep/restic/clients/${host}.env`,
    // As the repository's own user, the one its retention runs as, and with restic's shared lock:
    // retention (an exclusive lock) waits for the restore instead of removing data it still
    // reads, and the lock file stays readable by the client's server. The password reaches restic
    // as a credential, as it reaches retention; no cache.
    `user=$(systemctl show -p User --value ${prune})`,
    `[ -n "$user" ] || { echo "restore: this backup host has no retention unit for ${host} (${prune}) to read its repository as" >&2; exit 1; }`,
    `r() { systemd-run --quiet --pipe --wait --collect --service-type=exec -p User="$user" -p Group="$user" -p LoadCredential=password:/etc/upkeep/restic/clients/${host}.password -- /bin/sh -c 'exec restic -r "$0" --password-file "$CREDENTIALS_DIRECTORY/password" --no-cache "$@"' "$RESTIC_REPOSITORY" "$@"; }`,
    // The newest snapshot the scheduled job made (tag upkeep), unless one is named.
    snapshot !== undefined
      ? `id=${snapshot}`
      : `id=$(r snapshots --tag upkeep --latest 1 --json | grep -o '"short_id":"[0-9a-f]*"' | tail -1 | cut -d'"' -f4)`,
    `[ -n "$id" ] || { echo "restore: ${host} has no snapshot made by its backup job" >&2; exit 1; }`,
    'echo "restore: snapshot $id" >&2',
    'r dump --archive tar "$id" /',
  ].join('\n');
}

/** The new machine's command: unpack into /, keep its own files, let systemd see the restored units. */
export function unpackCommand(): string {
  // Anchored, so that only these paths are kept; each also with a leading slash, which GNU tar
  // matches before stripping it from member names.
  const excludes = KEPT_ON_NEW_HOST.flatMap((p) => [`--exclude=${shellQuote(p)}`, `--exclude=${shellQuote(`/${p}`)}`]).join(' ');
  return [
    'set -eu',
    `tar -x -p --numeric-owner --same-owner --anchored --wildcards ${excludes} -C / -f -`,
    'systemctl daemon-reload',
    // What the lost host had enabled for boot starts now, as a boot would (starting the already
    // active default target again does not start its new wants).
    'for dir in "/etc/systemd/system/$(systemctl get-default).wants" /etc/systemd/system/multi-user.target.wants; do',
    '  [ -d "$dir" ] || continue',
    // A unit that cannot start is the health gate's to report: the re-apply still runs.
    '  for unit in "$dir"/*; do [ -e "$unit" ] || continue; systemctl start --no-block -- "${unit##*/}" || echo "restore: could not start ${unit##*/}" >&2; done',
    'done',
    'true',
  ].join('\n');
}

function sshArgs(target: InventoryHost, knownHosts: string, identity: string | undefined, command: string): string[] {
  return [
    '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=3',
    '-p', String(target.port), '-l', 'root',
    ...(identity !== undefined ? ['-i', identity, '-o', 'IdentitiesOnly=yes'] : []),
    '-T', '--', target.address, `sh -c ${shellQuote(command)}`,
  ];
}

export interface WholeRestoreOptions {
  readonly host: string;
  readonly onto: string;
  readonly plan: string;
  readonly snapshot?: string;
  readonly identity?: string;
  /** Options for bin/apply after the plan directory. */
  readonly applyArgs?: readonly string[];
  /** Only the transfer, no re-apply (for measuring it). */
  readonly transferOnly?: boolean;
}

/** Restores HOST whole onto the machine the plan now names for it, then applies the plan. */
export async function runWholeRestore(o: WholeRestoreOptions, io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream }): Promise<number> {
  const { document } = await readPlanDir(o.plan);
  const planned = document.hosts[o.host];
  if (planned === undefined || !Object.hasOwn(document.hosts, o.host)) throw new Error(`${o.host} is not a host of the plan in ${o.plan}`);
  // --onto must name the machine the plan already points HOST at (its address and pinned key come
  // from the edited policy): a typo cannot overwrite another machine.
  if (planned.address !== o.onto) throw new Error(`--onto ${o.onto} is not ${o.host}'s address in the plan in ${o.plan} (${planned.address ?? 'none'}): put the new machine's address and host key into the policy, run bin/plan, and restore with that plan`);
  const backupHost = backupHostOf(document, o.host);
  const inventory = buildInventory(document);
  const dir = mkdtempSync(join(tmpdir(), 'upkeep-restore-'));
  const knownHosts = join(dir, 'known_hosts');
  writeKnownHosts(inventory, knownHosts);
  const identity = o.identity && resolve(o.identity);
  const started = Date.now();
  try {
    const source = spawn('ssh', sshArgs(inventory[backupHost] as InventoryHost, knownHosts, identity, dumpCommand(o.host, o.snapshot)), { stdio: ['ignore', 'pipe', 'pipe'] });
    const sink = spawn('ssh', sshArgs(inventory[o.host] as InventoryHost, knownHosts, identity, unpackCommand()), { stdio: ['pipe', 'pipe', 'pipe'] });
    let bytes = 0;
    source.stdout.on('data', (b: Buffer) => { bytes += b.length; });
    source.stdout.pipe(sink.stdin);
    sink.stdin.on('error', () => undefined);
    source.stderr.pipe(io.stderr, { end: false });
    sink.stderr.pipe(io.stderr, { end: false });
    sink.stdout.pipe(io.stderr, { end: false });
    const exited = (child: ReturnType<typeof spawn>) => new Promise<number>((done) => child.on('close', (code) => done(code ?? 1)));
    const [dumped, unpacked] = await Promise.all([exited(source), exited(sink)]);
    if (dumped !== 0 || unpacked !== 0) {
      io.stderr.write(`upkeep restore: ${o.host}: ${dumped !== 0 ? `the dump on ${backupHost} exited ${dumped}` : ''}${dumped !== 0 && unpacked !== 0 ? '; ' : ''}${unpacked !== 0 ? `unpacking on ${o.onto} exited ${unpacked}` : ''}; nothing re-applied\n`);
      return 1;
    }
    const seconds = (Date.now() - started) / 1000;
    io.stdout.write(`restore: ${o.host} restored onto ${o.onto} from ${backupHost}: ${(bytes / 1048576).toFixed(1)} MiB of tar in ${seconds.toFixed(1)} s\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (o.transferOnly) return 0;
  io.stdout.write(`restore: re-applying the plan in ${o.plan}\n`);
  const applied = await runApply([o.plan, ...(identity ? ['--identity', identity] : []), ...(o.applyArgs ?? [])], io);
  return applied.exitCode === 0 ? 0 : 1;
}
