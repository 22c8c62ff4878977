// The shell programs of lib/runtime, installed on every host that runs them. Their content is read
// from this package at compile time, so a plan always ships the programs of the upkeep that made it.

import { readFileSync } from 'node:fs';
import { RUNTIME_DIR, type ManagedFile } from './desired-state.ts';

const SOURCE_DIR = new URL('../runtime/', import.meta.url);
const SCRIPT_NAME = /^[a-z0-9-]+\.sh$/;
const cache = new Map<string, string>();

/** The managed file installing runtime program `name` (e.g. "in-window.sh") in RUNTIME_DIR. */
export function runtimeScript(name: string): ManagedFile {
  if (!SCRIPT_NAME.test(name)) throw new Error(`not a runtime program name: ${name}`);
  let content = cache.get(name);
  if (content === undefined) {
    content = readFileSync(new URL(name, SOURCE_DIR), 'utf8');
    cache.set(name, content);
  }
  return { path: `${RUNTIME_DIR}/${name}`, mode: '0755', owner: 'root:root', content };
}

/** Programs that the given programs call in turn. */
const CALLS: Readonly<Record<string, readonly string[]>> = {
  'backup.sh': ['safe-path.sh'],
  'mitigations.sh': ['safe-path.sh'],
  'reboot.sh': ['in-window.sh'],
  'run-check.sh': ['alert.sh', 'write-metrics.sh'],
  'check-reboot-required.sh': ['reboot-ready.sh'],
  'serve-reboot-ready.sh': ['reboot-ready.sh'],
  'alert.sh': ['send-alertmanager.sh', 'send-email.sh', 'send-webhook.sh'],
  'send-alertmanager.sh': ['alert-text.sh'],
  'send-email.sh': ['alert-text.sh'],
  'send-webhook.sh': ['alert-text.sh'],
};

/** `names` with every program they call, sorted and without repeats. */
export function withCallees(names: readonly string[]): string[] {
  const all = new Set<string>();
  const visit = (name: string) => {
    if (all.has(name)) return;
    all.add(name);
    (CALLS[name] ?? []).forEach(visit);
  };
  names.forEach(visit);
  return [...all].sort();
}
