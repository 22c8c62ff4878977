// Backup key exchange: a client that backs up over ssh to a fleet host makes its own ssh key (on
// the client, never shipped); its repository host accepts it only once the key is in
// RECEIVER_KEYS_DIR/<user>.keys there. That file is host state, so the applier fills it after the
// rollout: it asks each client for its public key (`backup.sh key`, one round trip, only when the
// up-front read-state did not already show it) and writes each receiver's files atomically in one
// round trip for all its clients. A fleet where every key is already in place costs nothing more.
//
// The same round trip mounts a backup host's volume (upkeep-backup-volume.service), creates the
// receiving users and their repository directories (systemd-sysusers, systemd-tmpfiles) and reloads
// sshd, since the agent only writes those files and enables the unit.
// It runs at the end of the rollout, after every group went through its waves and gates: a
// receiver is often in a later group than its clients, its users must exist before their keys are
// useful, and once at the end means one round trip per receiver however many groups there are.
//
// A provisioned backup host's address and host key are only known here, from the Terraform outputs
// and the rotated key bin/apply pinned (lib/hosts/host-key-pins.ts): the same step writes them to
// each of its clients (BACKUP_HOST_PIN_DIR: ssh_config and known_hosts), in one round trip per
// client and only when they differ from what read-state showed. Until then the client connects to
// nothing (backup.sh refuses), and a backup host rebuilt with a new key is re-pinned on the next run.

import { BACKUP_HOST_PIN_DIR, RECEIVER_KEYS_DIR, VOLUME_UNIT } from '../compile/backups.ts';
import { CONFIG_DIR, RUNTIME_DIR, STATE_DIR } from '../compile/desired-state.ts';
import { shellQuote } from '../compile/env-file.ts';
import type { PlanDocument } from '../plan/plan-format.ts';
import type { HostState } from '../hosts/host-agent.ts';
import type { Inventory } from '../hosts/inventory.ts';
import type { Journal } from './journal.ts';
import { installPinFiles, pinLines } from './pin-files.ts';
import type { Progress } from './progress.ts';
import { firstLine, lastLines, pMap, type Transport } from '../hosts/transport.ts';

/** Where a client's restic settings are (compiled by lib/compile/backups.ts). */
export const BACKUP_ENV = `${CONFIG_DIR}/restic/backup.env`;
/** The receiver's compiled files this step puts into effect (lib/compile/backups.ts). */
const RECEIVER_SYSUSERS = '/etc/sysusers.d/upkeep-restic.conf';
const RECEIVER_TMPFILES = '/etc/tmpfiles.d/upkeep-restic.conf';

/** A client backing up over ssh to a fleet host, as user `user` there. */
export interface BackupLink {
  readonly client: string;
  readonly receiver: string;
  readonly user: string;
  /**
   * For a provisioned receiver: where the client must find it, as bin/apply's pinned inventory has
   * it (absent when that inventory has no key for it: the link is then reported, not pinned).
   */
  readonly pin?: BackupHostPin;
  /** The client's backup.env asks for an apply-time pin (BACKUP_HOST_PIN_DIR). */
  readonly pinned?: boolean;
}

/** The address, port and host key a client pins for its provisioned backup host. */
export interface BackupHostPin {
  readonly address: string;
  readonly port: number;
  /** "ssh-ed25519 AAAA...": the key the rollout itself connected with (rotated, for a provisioned host). */
  readonly hostKey: string;
}

const PIN_LINE = /^UPKEEP_BACKUP_HOST_PIN='([^']*)'$/m;
const REPOSITORY_LINE = /^RESTIC_REPOSITORY='(?:rclone|sftp):([a-z_][a-z0-9_-]*)@([A-Za-z0-9.-]+):\/[^']*'$/m;
const USER = /^[a-z_][a-z0-9_-]*$/;
/** An OpenSSH public key line as ssh-keygen writes it; anything else never reaches a keys file. */
const PUBLIC_KEY = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+=* ?[A-Za-z0-9@._-]*$/;

/**
 * The backup links of a plan: every host whose planned backup.env names a repository reached over ssh on
 * a host of the plan (by name or address), which must plan to receive it (its sysusers.d file
 * names the user). `plannedFile` reads a planned file's content (the plan directory's copy);
 * `inventory` (what the rollout connects with) gives a provisioned receiver's pin to its clients.
 */
export function backupLinks(plan: PlanDocument, plannedFile: (host: string, path: string) => string, inventory?: Inventory): BackupLink[] {
  const has = (host: string, path: string) => plan.hosts[host]?.files.some((f) => f.path === path) ?? false;
  const links: BackupLink[] = [];
  for (const client of Object.keys(plan.hosts).sort()) {
    if (!has(client, BACKUP_ENV)) continue;
    const env = plannedFile(client, BACKUP_ENV);
    const m = REPOSITORY_LINE.exec(env);
    if (!m) continue;
    const [, user = '', target = ''] = m;
    const receiver = plan.hosts[target] ? target : Object.values(plan.hosts).find((h) => h.address === target)?.name;
    if (receiver === undefined) continue; // a repository outside the fleet: its keys are the operator's
    const receives = has(receiver, RECEIVER_SYSUSERS) && plannedFile(receiver, RECEIVER_SYSUSERS).split('\n').some((l) => l.startsWith(`u ${user} `));
    if (!receives) throw new Error(`${client} backs up to ${receiver} as ${user}, but ${receiver}'s plan does not create that user`);
    const pinDir = PIN_LINE.exec(env)?.[1];
    if (pinDir === undefined) {
      links.push({ client, receiver, user });
      continue;
    }
    if (pinDir !== BACKUP_HOST_PIN_DIR) throw new Error(`${client}: its backup.env pins the backup host in ${pinDir}, not ${BACKUP_HOST_PIN_DIR}; run bin/plan again`);
    const at = inventory?.[receiver];
    const pin = at?.hostKey === undefined ? undefined : { address: at.address, port: at.port, hostKey: at.hostKey };
    links.push({ client, receiver, user, pinned: true, ...(pin && { pin }) });
  }
  return links;
}

export interface BackupKeysOptions {
  readonly links: readonly BackupLink[];
  /** Hosts now on their planned generation; links with another host are left for a later run. */
  readonly applied: ReadonlySet<string>;
  /** Hosts the rollout changed: a changed receiver gets its users, directories and sshd reload even when no key is new. */
  readonly changed: ReadonlySet<string>;
  /** What read-state found before the rollout (keys survive generations: they are host state). */
  readonly states: ReadonlyMap<string, HostState>;
  transport(host: string): Transport;
  readonly journal: Journal;
  readonly progress: Progress;
  /** @default 8 */
  readonly parallel?: number;
}

/** The receivers that could not be given their clients' keys, with why; empty when all are in place. */
export async function exchangeBackupKeys(options: BackupKeysOptions): Promise<Map<string, string>> {
  const { journal, progress, states } = options;
  const problems = new Map<string, string>();
  // An image root (systemState "offline") runs nothing and its key is made on first boot.
  const live = (host: string) => options.applied.has(host) && states.get(host)?.systemState !== 'offline';
  const links = options.links.filter((l) => live(l.client) && live(l.receiver));
  if (links.length === 0) return problems;
  const parallel = options.parallel ?? 8;

  // 1. Each client's key: from read-state, else asked for (which makes it on first use).
  const clients = [...new Set(links.map((l) => l.client))];
  const keys = new Map<string, string>();
  await pMap(clients, Math.min(parallel, clients.length), async (client) => {
    const known = states.get(client)?.backupKey;
    if (known !== undefined && PUBLIC_KEY.test(known)) return void keys.set(client, known);
    try {
      const key = await journal.step({ host: client, step: 'backup-key' }, () => clientKey(options.transport(client)), (k) => ({ result: 'ok', detail: k.split(' ')[0] }));
      keys.set(client, key);
    } catch (error) {
      progress(`  ${client}  backup key: ${firstLine(error)}`, 'fail');
    }
  });

  // 2. Each receiver: the keys of its clients, per user, written when they differ from what it has.
  const receivers = [...new Set(links.map((l) => l.receiver))].sort();
  await pMap(receivers, Math.min(parallel, receivers.length), async (receiver) => {
    const mine = links.filter((l) => l.receiver === receiver);
    const missing = mine.filter((l) => !keys.has(l.client)).map((l) => l.client);
    if (missing.length > 0) {
      problems.set(receiver, `no backup key from ${missing.join(', ')}`);
      journal.record({ host: receiver, step: 'backup-keys' }, 'failed', new Date(), `no backup key from ${missing.join(', ')}`);
      return;
    }
    const wanted = new Map<string, string[]>();
    for (const l of mine) wanted.set(l.user, [...new Set([...(wanted.get(l.user) ?? []), keys.get(l.client) as string])].sort());
    const accepted = states.get(receiver)?.backupAccepts ?? [];
    const current = (user: string) => [...new Set(accepted.filter((a) => a.user === user).map((a) => a.key))].sort();
    const stale = [...wanted].filter(([user, ks]) => current(user).join('\n') !== ks.join('\n')).map(([user]) => user);
    if (stale.length === 0 && !options.changed.has(receiver)) {
      journal.record({ host: receiver, step: 'backup-keys' }, 'unchanged', new Date(), `${[...wanted.keys()].join(', ')}: keys in place`);
      return;
    }
    try {
      await journal.step({ host: receiver, step: 'backup-keys' }, () => installKeys(options.transport(receiver), wanted), () => ({
        result: stale.length > 0 ? 'changed' : 'ok',
        detail: stale.length > 0 ? `keys written for ${stale.join(', ')}` : 'receiver users, directories and sshd brought up to date',
      }));
      progress(`  ${receiver}  backup receiver: ${stale.length > 0 ? `keys written for ${stale.join(', ')}` : 'users, directories and sshd up to date'}`, 'ok');
    } catch (error) {
      problems.set(receiver, firstLine(error));
      progress(`  ${receiver}  backup receiver: ${firstLine(error)}`, 'fail');
    }
  });

  // 3. Each client of a provisioned receiver: that receiver's address and key, written when they changed.
  const pinned = links.filter((l) => l.pinned);
  await pMap(pinned, Math.min(parallel, Math.max(1, pinned.length)), async (l) => {
    if (l.pin === undefined) {
      const why = `no pinned host key for its backup host ${l.receiver} (with --known-hosts, bin/apply has no key to give the clients)`;
      problems.set(l.client, why);
      journal.record({ host: l.client, step: 'backup-host-pin' }, 'failed', new Date(), why);
      progress(`  ${l.client}  backup host pin: ${why}`, 'fail');
      return;
    }
    const files = backupHostPinFiles(l.receiver, l.pin);
    const current = states.get(l.client)?.backupHostPin ?? [];
    if (current.join('\n') === pinLines([['known_hosts', files.knownHosts], ['ssh_config', files.sshConfig]]).join('\n')) {
      journal.record({ host: l.client, step: 'backup-host-pin' }, 'unchanged', new Date(), `${l.receiver} pinned at ${l.pin.address}`);
      return;
    }
    try {
      await journal.step({ host: l.client, step: 'backup-host-pin' }, () => installPinFiles(options.transport(l.client), BACKUP_HOST_PIN_DIR, [['ssh_config', files.sshConfig], ['known_hosts', files.knownHosts]], 'pinning the backup host'), () => ({ result: 'changed', detail: `${l.receiver} pinned at ${l.pin!.address}` }));
      progress(`  ${l.client}  backup host ${l.receiver} pinned: ${l.pin.address} port ${l.pin.port}`, 'ok');
    } catch (error) {
      problems.set(l.client, firstLine(error));
      progress(`  ${l.client}  backup host pin: ${firstLine(error)}`, 'fail');
    }
  });
  return problems;
}

interface PinFiles {
  readonly sshConfig: string;
  readonly knownHosts: string;
}

/** What a client of `receiver` pins: ssh_config sends every connection to the address, known_hosts holds the one key. */
export function backupHostPinFiles(receiver: string, pin: BackupHostPin): PinFiles {
  if (!/^[A-Za-z0-9][A-Za-z0-9.:-]*$/.test(pin.address)) throw new Error(`${receiver}: address ${JSON.stringify(pin.address)} cannot be pinned`);
  if (!/^[a-z0-9@.-]+ [A-Za-z0-9+/]+={0,3}$/.test(pin.hostKey)) throw new Error(`${receiver}: host key is not "type base64"`);
  if (!Number.isInteger(pin.port) || pin.port < 1 || pin.port > 65535) throw new Error(`${receiver}: invalid ssh port ${pin.port}`);
  return {
    sshConfig: `# Managed by upkeep (bin/apply): the backup host ${receiver}, at its provisioned address.\nHost *\n  HostName ${pin.address}\n  Port ${pin.port}\n`,
    knownHosts: `${pin.port === 22 ? pin.address : `[${pin.address}]:${pin.port}`} ${pin.hostKey}\n`,
  };
}

/** One round trip: the client's public key, made on first use by backup.sh. */
async function clientKey(t: Transport): Promise<string> {
  const result = await t.run(`exec ${RUNTIME_DIR}/backup.sh key`);
  const key = result.stdout.trim();
  if (result.exitCode !== 0) throw new Error(`${t.host}: backup.sh key exited ${result.exitCode}: ${lastLines(result.stderr, 3)}`);
  if (!PUBLIC_KEY.test(key)) throw new Error(`${t.host}: backup.sh key printed something that is not one public key`);
  return key;
}

/**
 * One round trip on a receiver: its users and repository directories as compiled, each user's keys
 * file replaced atomically (exactly its clients' keys: a client's old key stops working), sshd
 * checked and reloaded. sshd reads a keys file as the user, so the state directory is made
 * traversable (0711: its entries stay unreadable) and the keys directory readable.
 */
async function installKeys(t: Transport, wanted: ReadonlyMap<string, readonly string[]>): Promise<void> {
  const lines = [
    'set -eu',
    'umask 022',
    // A backup host with a volume: mounted before any repository directory is made (on it, not under it).
    `if systemctl cat ${VOLUME_UNIT} >/dev/null 2>&1; then systemctl start ${VOLUME_UNIT}; fi`,
    `systemd-sysusers ${RECEIVER_SYSUSERS}`,
    `systemd-tmpfiles --create ${RECEIVER_TMPFILES}`,
    `chmod 0711 ${STATE_DIR}`,
    `mkdir -p ${RECEIVER_KEYS_DIR}`,
    `chmod 0755 ${RECEIVER_KEYS_DIR}`,
  ];
  for (const [user, keys] of [...wanted].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!USER.test(user)) throw new Error(`${t.host}: not a user name: ${JSON.stringify(user)}`);
    for (const key of keys) if (!PUBLIC_KEY.test(key)) throw new Error(`${t.host}: not a public key for ${user}`);
    const file = `${RECEIVER_KEYS_DIR}/${user}.keys`;
    lines.push(`printf '%s\\n' ${keys.map(shellQuote).join(' ')} >${file}.new`, `chmod 0644 ${file}.new`, `mv -f ${file}.new ${file}`);
  }
  lines.push(
    '/usr/sbin/sshd -t',
    // Debian names the unit ssh.service, others sshd.service.
    'if systemctl cat ssh.service >/dev/null 2>&1; then unit=ssh.service; else unit=sshd.service; fi',
    'systemctl try-reload-or-restart "$unit"',
  );
  const result = await t.run(lines.join('\n'));
  if (result.exitCode !== 0) throw new Error(`${t.host}: installing backup keys failed (exit ${result.exitCode}): ${lastLines(result.stderr, 3)}`);
}
