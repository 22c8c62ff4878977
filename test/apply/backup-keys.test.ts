// Which hosts back up over sftp to which fleet host, read from a real plan directory (bin/plan on
// the YAML example: four hosts back up to backup1, which backs up off site).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupLinks } from '../../lib/apply/backup-keys.ts';
import type { PlanDocument } from '../../lib/plan/plan-format.ts';
import { objectPath } from '../../lib/plan/plan-dir.ts';

const root = join(import.meta.dirname, '..', '..');

describe('backupLinks', () => {
  let dir: string;
  let plan: PlanDocument;
  const planned = (host: string, path: string) => readFileSync(join(dir, objectPath(plan.hosts[host]!.files.find((f) => f.path === path)!.sha256!)), 'utf8');

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'upkeep-backup-links-'));
    const env = { ...process.env, RESTIC_PASSWORD: 'unused', ALERT_TOKEN: 'unused', NO_COLOR: '1' };
    const run = spawnSync(join(root, 'bin', 'plan'), ['examples/yaml/fleet.yaml', '--out', dir], { cwd: root, env, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(2);
    plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as PlanDocument;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('links every host backing up to a fleet host with its own sftp user there, and leaves a repository outside the fleet alone', () => {
    expect(backupLinks(plan, planned)).toEqual([
      { client: 'mon1', receiver: 'backup1', user: 'restic-mon1' },
      { client: 'stage1', receiver: 'backup1', user: 'restic-stage1' },
      { client: 'web1', receiver: 'backup1', user: 'restic-web1' },
      { client: 'web2', receiver: 'backup1', user: 'restic-web2' },
    ]);
  });

  it('refuses a plan whose repository host does not create the client\'s user', () => {
    const withoutWeb2 = (host: string, path: string) => planned(host, path).replace(/^u restic-web2 .*$/m, '');
    expect(() => backupLinks(plan, withoutWeb2)).toThrow(/web2 backs up to backup1 as restic-web2, but backup1's plan does not create that user/);
  });
});
