import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { UPKEEP_VERSION } from '../lib/version.ts';

it('records the version of package.json in plans', () => {
  const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version: string };
  expect(UPKEEP_VERSION).toBe(pkg.version);
});
