// Tiny Debian packages built in a test with dpkg-deb, installed on test hosts from a local file
// (copied over ssh, then `apt-get install ./file.deb`), the way a fixed version would arrive. Not a
// repository: the update tests that need one use test/fleet/deb-repo.ts.

import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { runChecked } from './run-command.ts';
import type { TestHost } from './testbed.ts';

export interface TinyDeb {
  readonly name: string;
  readonly version: string;
  /** Files by absolute path on the host -> content; programs under /usr/sbin get mode 0755. */
  readonly files: Readonly<Record<string, string>>;
  /** Maintainer scripts (postinst, prerm, ...) -> their shell text. */
  readonly scripts?: Readonly<Record<string, string>>;
}

/** Builds `deb` with dpkg-deb; returns the .deb file's path. */
export async function buildTinyDeb(deb: TinyDeb): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'upkeep-tiny-deb-'));
  const root = join(dir, 'root');
  mkdirSync(join(root, 'DEBIAN'), { recursive: true });
  writeFileSync(
    join(root, 'DEBIAN/control'),
    `Package: ${deb.name}\nVersion: ${deb.version}\nArchitecture: all\nMaintainer: upkeep tests <tests@example.invalid>\nDescription: upkeep test package ${deb.name}\n`,
  );
  for (const [name, text] of Object.entries(deb.scripts ?? {})) writeFileSync(join(root, 'DEBIAN', name), `#!/bin/sh\nset -e\n${text}\n`, { mode: 0o755 });
  for (const [path, content] of Object.entries(deb.files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content, { mode: path.startsWith('/usr/sbin/') ? 0o755 : 0o644 });
  }
  const file = join(dir, `${deb.name}_${deb.version}_all.deb`);
  await runChecked('dpkg-deb', ['--root-owner-group', '--build', root, file]);
  return file;
}

/** Copies the .deb to `host` and installs it with apt from that local file; throws with apt's output on failure. */
export async function installDeb(host: TestHost, file: string): Promise<void> {
  const base = file.slice(file.lastIndexOf('/') + 1);
  // ssh's stdin takes text: the package travels as base64.
  const copy = await host.ssh(`base64 -d > /root/${base}`, { input: (await readFile(file)).toString('base64') });
  if (copy.exitCode !== 0) throw new Error(`${host.name}: copying ${base} failed: ${copy.stderr}`);
  const install = await host.ssh(`DEBIAN_FRONTEND=noninteractive apt-get install -y --allow-downgrades /root/${base}`, { timeoutMs: 300_000 });
  if (install.exitCode !== 0) throw new Error(`${host.name}: installing ${base} failed (exit ${install.exitCode}):\n${install.stdout}\n${install.stderr}`);
}
