// A host's generation: a hash that names exactly one desired state (files, units, packages).
// Two plans that would leave a host identical give it the same generation.

import { createHash } from 'node:crypto';
import type { FileSecret, HostDesiredState, ManagedFile } from './desired-state.ts';
import { canonicalJson, inKeyOrder } from './canonical-json.ts';

/** A managed file as its host's generation hashes it and plan.json records it: content by its hash. */
export interface PlannedFile {
  readonly path: string;
  readonly mode: string;
  readonly owner: string;
  /** sha256 hex of the content; absent for secret files, whose content only exists at apply time. */
  readonly sha256?: string;
  /** For secret files: the reference the applier resolves. */
  readonly secret?: FileSecret;
}

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Hashes of recent contents. Most of a host's files are the same as the last host's (the runtime
 * programs, units): a fleet of 10,000 hosts would hash the same few hundred kilobytes 10,000 times,
 * and keep 10,000 copies of each hash. Emptied when full, so it never holds more than a few
 * hosts' worth of contents.
 */
const recentHashes = new Map<string, string>();
const RECENT_HASHES = 4096;

function contentHash(content: string): string {
  let hash = recentHashes.get(content);
  if (hash === undefined) {
    if (recentHashes.size >= RECENT_HASHES) recentHashes.clear();
    hash = sha256(content);
    recentHashes.set(content, hash);
  }
  return hash;
}

// The objects below are built with their keys in sorted order: canonicalJson then serializes them
// as they are instead of copying them (the text is the same either way).

export function plannedFile(file: ManagedFile): PlannedFile {
  return {
    mode: file.mode,
    owner: file.owner,
    path: file.path,
    ...(file.secret !== undefined && { secret: inKeyOrder(file.secret) }),
    ...(file.content !== undefined && { sha256: contentHash(file.content) }),
  };
}

export function generationOf(files: readonly PlannedFile[], units: readonly string[], packages: readonly string[]): string {
  return sha256(canonicalJson({ files, packages, units }));
}

export function hostGeneration(state: HostDesiredState): string {
  return generationOf(state.files.map(plannedFile), state.units, state.packages);
}

/** A compiled host without its files' contents: what a plan records of it, and its generation. */
export interface PlannedState {
  readonly host: string;
  readonly files: readonly PlannedFile[];
  readonly units: readonly string[];
  readonly packages: readonly string[];
  readonly generation: string;
}

/**
 * `state` with each content replaced by its hash (each hashed once), handing every content to
 * `onContent` on the way: what a planner keeps of a host once its contents are on their way to disk.
 */
export function plannedState(state: HostDesiredState, onContent: (sha256: string, content: string) => void): PlannedState {
  const files = state.files.map((file) => {
    const planned = plannedFile(file);
    if (file.content !== undefined) onContent(planned.sha256!, file.content);
    return planned;
  });
  return { host: state.host, files, units: state.units, packages: state.packages, generation: generationOf(files, state.units, state.packages) };
}
