// upkeep restore: the one command the host runs. The fleet test (test/fleet/backup-restore.test.ts)
// runs it against a real host; this pins how arguments reach the host's shell.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { restoreCommand } from '../../lib/cli/restore.ts';

/** The words a POSIX shell makes of the command after "exec". */
function words(command: string): string[] {
  const run = spawnSync('sh', ['-c', `set -- ${command.replace(/^exec /, '')}; printf '%s\\0' "$@"`], { encoding: 'utf8' });
  return run.stdout.split('\0').slice(0, -1);
}

describe('restoreCommand', () => {
  it('runs backup.sh restore on the host with every argument quoted: $, quotes and spaces stay literal', () => {
    const command = restoreCommand({ paths: ["/srv/www/it's $HOME;reboot", '/etc/x y'], at: 'yesterday 12:00', to: '/root/back' });
    expect(words(command)).toEqual(['/usr/local/lib/upkeep/backup.sh', 'restore', '--at', 'yesterday 12:00', '--to', '/root/back', '--', "/srv/www/it's $HOME;reboot", '/etc/x y']);
  });

  it('lists snapshots with --list', () => {
    expect(words(restoreCommand({ paths: [], list: true }))).toEqual(['/usr/local/lib/upkeep/backup.sh', 'snapshots']);
  });

  it('refuses what backup.sh would refuse, before connecting', () => {
    expect(() => restoreCommand({ paths: [] })).toThrow(/name the absolute paths/);
    expect(() => restoreCommand({ paths: ['srv/www'] })).toThrow(/not an absolute path/);
    expect(() => restoreCommand({ paths: ['/srv'], at: 'today', snapshot: 'abcd1234' })).toThrow(/--at or --snapshot, not both/);
    expect(() => restoreCommand({ paths: ['/srv'], to: 'back' })).toThrow(/--to "back" is not an absolute path/);
  });
});
