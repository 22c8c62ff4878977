// What a host should look like after apply. The applier makes a host match exactly this; the plan
// compares it with what a host has now.

import type { SecretRef } from '../policy/model.ts';

/**
 * A secret file's content: the reference's value, or with `derive`, HMAC-SHA256 keyed with the
 * value (trailing line breaks removed) over the text `derive`, in hex. One fleet secret thus gives
 * each host a password of its own that no other host can compute; the operator recomputes any of
 * them from the secret store (README: "Backup passwords").
 */
export type FileSecret = SecretRef & { readonly derive?: string };

export interface ManagedFile {
  /** Absolute path on the host. */
  readonly path: string;
  /** Octal mode, e.g. "0644". Secret files are always "0600". */
  readonly mode: string;
  /** "user:group". @default root:root */
  readonly owner: string;
  /** Literal content; exactly one of content and secret. */
  readonly content?: string;
  /** Content resolved at apply time; plans show only a fingerprint of the reference. */
  readonly secret?: FileSecret;
}

/** A disruptive action that only runs inside the host's maintenance window. */
export interface WindowAction {
  readonly kind: 'reboot' | 'restart';
  readonly unit?: string;
}

export interface HostDesiredState {
  readonly host: string;
  /** Files sorted by path. */
  readonly files: readonly ManagedFile[];
  /** Units to enable (and start, for timers), sorted. */
  readonly units: readonly string[];
  /** Packages the host must have, sorted. */
  readonly packages: readonly string[];
}

/** Directory of unit files written by upkeep on every host. */
export const UNIT_DIR = '/etc/systemd/system';
/** Prefix of every unit upkeep writes, so upkeep's units are recognisable and never collide. */
export const UNIT_PREFIX = 'upkeep-';
/** Where upkeep's runtime shell programs are installed on hosts. */
export const RUNTIME_DIR = '/usr/local/lib/upkeep';
/** Configuration upkeep writes for its runtime programs. */
export const CONFIG_DIR = '/etc/upkeep';
/** Host state: manifest and generations. */
export const STATE_DIR = '/var/lib/upkeep';
/**
 * The monitor's heartbeat time, for its liveness server, which runs unprivileged: a directory of
 * its own (0755, the time 0644), since STATE_DIR is 0700 and holds keys and secrets.
 */
export const LIVENESS_DIR = '/var/lib/upkeep-liveness';
