// check-smart.sh with a FAKE smartctl: a physical disk's SMART data cannot exist in this machine.
// The fake answers --scan with the disks given and -H with smartctl's own words and exit status
// for each; the real command lines the check runs are recorded and checked.

import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runScript, tempDir } from './run-script.ts';

const PASSED_ATA = 'SMART overall-health self-assessment test result: PASSED';
const OK_SCSI = 'SMART Health Status: OK';
const FAILED_ATA = 'SMART overall-health self-assessment test result: FAILED!\nDrive failure expected in less than 24 hours. SAVE ALL DATA.';
const DISABLED = 'SMART support is: Disabled\nSMART Disabled. Use option -s with argument \'on\' to enable it.';

/** A FAKE smartctl answering -H for each device with [its output, its exit status]. */
function fakeSmartctl(disks: Record<string, [string, number]>): { path: string; calls: () => string[] } {
  const bin = tempDir();
  const log = join(bin, 'calls');
  const cases = Object.entries(disks)
    .map(([device, [out, rc]]) => `  ${device}) printf '%s\\n' '${out.replace(/'/g, "'\\''")}'; exit ${rc} ;;`)
    .join('\n');
  const scan = Object.keys(disks).map((d) => `${d} -d sat # ${d}, ATA device`).join('\\n');
  writeFileSync(join(bin, 'smartctl'), `#!/bin/sh\necho "$*" >> '${log}'\nif [ "$1" = --scan ]; then printf '${scan}\\n'; exit 0; fi\ncase $3 in\n${cases}\nesac\nexit 2\n`);
  chmodSync(join(bin, 'smartctl'), 0o755);
  return { path: `${bin}:${process.env.PATH}`, calls: () => readFileSync(log, 'utf8').trim().split('\n') };
}

describe('check-smart.sh with a FAKE smartctl', () => {
  it('is OK only when every disk says PASSED (ATA, NVMe) or OK (SCSI), asking each with smartctl -H', () => {
    const fake = fakeSmartctl({ '/dev/sda': [PASSED_ATA, 0], '/dev/sdb': [OK_SCSI, 0] });
    const run = runScript('check-smart.sh', [], { PATH: fake.path });
    expect(run.stdout).toBe('OK: SMART health passed on 2 disks\n');
    expect(run.status).toBe(0);
    expect(fake.calls()).toEqual(['--scan', '-H -- /dev/sda', '-H -- /dev/sdb']);
  });

  it('is CRITICAL for a failing disk', () => {
    const run = runScript('check-smart.sh', [], { PATH: fakeSmartctl({ '/dev/sda': [PASSED_ATA, 0], '/dev/sdb': [FAILED_ATA, 8] }).path });
    expect(run.stdout).toBe('CRITICAL: SMART reports failing disks: /dev/sdb\n');
    expect(run.status).toBe(2);
  });

  it.each([
    ['SMART is disabled on it (smartctl exits 0 without a verdict)', DISABLED, 0],
    ['its SMART command failed (exit bit 2)', 'Read SMART Data failed: Input/output error', 4],
    ['it cannot be opened (exit bit 1)', 'Smartctl open device: /dev/sdb failed: No such device', 2],
  ])('is UNKNOWN, never OK, for a disk when %s', (_, out, rc) => {
    const run = runScript('check-smart.sh', [], { PATH: fakeSmartctl({ '/dev/sda': [PASSED_ATA, 0], '/dev/sdb': [out, rc] }).path });
    expect(run.stdout).toBe('UNKNOWN: no SMART health verdict for /dev/sdb (SMART disabled, or its command failed)\n');
    expect(run.status).toBe(3);
  });

  it('is UNKNOWN when smartctl finds no disk', () => {
    const run = runScript('check-smart.sh', [], { PATH: fakeSmartctl({}).path });
    expect(run.status).toBe(3);
  });
});
