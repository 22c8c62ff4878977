// At apply time a `{file}` secret is read only from inside the project: a symlink that leads out
// of it, or to /proc/self/environ (the applier's environment, Hetzner token included), is refused
// without reading it, whatever validation let through (an older plan, a policy edited by hand).

import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SecretError, resolveSecret } from '../../lib/plan/secrets.ts';

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
