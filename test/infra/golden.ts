// Golden files: compiled output compared byte for byte with a reviewed copy under test/golden.
// UPDATE_GOLDEN=1 rewrites the copies instead; the diff then shows up in review.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { expect } from 'vitest';

const GOLDEN_DIR = join(import.meta.dirname, '..', 'golden');

export function expectGolden(name: string, actual: string): void {
  const file = join(GOLDEN_DIR, name);
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  const shown = relative(process.cwd(), file);
  if (!existsSync(file)) throw new Error(`golden file ${shown} does not exist yet; create it with UPDATE_GOLDEN=1`);
  expect(actual, `${shown} differs; if the change is intended, rewrite it with UPDATE_GOLDEN=1 and review the diff`).toBe(readFileSync(file, 'utf8'));
}
