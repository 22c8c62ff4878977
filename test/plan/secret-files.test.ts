// At apply time a `{file}` secret is read only from inside the project: a symlink that leads out
// of it, or to /proc/self/environ (the applier's environment, Hetzner token included), is refused
// without reading it, whatever validation let through (an older plan, a policy edited by hand).
// And the README's recipe recomputes a password bin/apply derived from such a file.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SecretError, resolveFileSecret, resolveSecret } from '../../lib/plan/secrets.ts';

describe('a {file} secret at apply time', () => {
  const work = mkdtempSync(join(tmpdir(), 'upkeep-secret-files-'));
  const project = join(work, 'project');
  mkdirSync(join(project, 'secrets'), { recursive: true });
  writeFileSync(join(project, 'secrets', 'alert-token'), 'inside\n');
  writeFileSync(join(work, 'outside-token'), 'outside\n');
  symlinkSync(join(work, 'outside-token'), join(project, 'secrets', 'leads-out'));
  symlinkSync('/proc/self/environ', join(project, 'secrets', 'environ'));
  symlinkSync('alert-token', join(project, 'secrets', 'stays-in'));
  const source = { baseDir: project, env: {} };

  it('reads a file inside the project, also through a symlink that stays inside', () => {
    expect(resolveSecret({ file: 'secrets/alert-token' }, source).toString()).toBe('inside\n');
    expect(resolveSecret({ file: 'secrets/stays-in' }, source).toString()).toBe('inside\n');
  });

  it.each([
    ['/proc/self/environ', /refused: it is in \/proc, \/sys or \/dev/],
    ['secrets/environ', /refused: it is in \/proc, \/sys or \/dev/],
    ['secrets/leads-out', /refused: a secret file must be inside the project directory .*, symlinks resolved/],
    ['../outside-token', /refused: a secret file must be inside the project directory/],
    [join(work, 'outside-token'), /refused: a secret file must be inside the project directory/],
  ])('refuses %s', (file, message) => {
    expect(() => resolveSecret({ file }, source)).toThrow(SecretError);
    expect(() => resolveSecret({ file }, source)).toThrow(message);
  });
});

describe("the README's recipe for a lost host's backup password", () => {
  const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
  const recipe = /^pass show upkeep\/restic \| (.*) web1$/m.exec(readme)?.[1];
  const project = mkdtempSync(join(tmpdir(), 'upkeep-recipe-'));

  it.each([
    ['a text secret with a trailing newline', Buffer.from('correct horse battery staple\n')],
    // 0xff and a cut-off multi-byte sequence are not UTF-8: bin/apply reads them as U+FFFD.
    ['a key file of random bytes, not UTF-8', Buffer.concat([randomBytes(29), Buffer.from([0xff, 0xe2, 0x82, 0x0a])])],
  ])('gives the password bin/apply derives, for %s', (_, secret) => {
    expect(recipe, 'README: the password recipe under "Backup passwords"').toBeDefined();
    writeFileSync(join(project, 'restic.key'), secret);
    const derived = resolveFileSecret({ file: 'restic.key', derive: 'upkeep restic repository web1' }, { baseDir: project, env: {} }).toString();
    const run = spawnSync('sh', ['-c', `${recipe} "$1"`, 'sh', 'web1'], { input: secret, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe(derived);
  });
});
