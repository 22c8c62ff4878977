// Bundles and helpers shared by the host agent's tests: a small maintenance timer with its service
// and a config file, in versions that differ in exactly one file.

import { createHash } from 'node:crypto';
import { SshTransport } from '../../lib/hosts/ssh-transport.ts';
import type { BundleFile, HostBundle } from '../../lib/hosts/host-agent.ts';
import type { RunOptions, RunResult, Transport } from '../../lib/hosts/transport.ts';
import type { TestFleet, TestHost } from '../fleet/testbed.ts';

export const SERVICE = 'upkeep-test-tick.service';
export const TIMER = 'upkeep-test-tick.timer';
export const CHECK = 'upkeep-test-check.service';

const unitFile = (name: string, content: string): BundleFile => ({ path: `/etc/systemd/system/${name}`, mode: '0644', owner: 'root:root', content });

/** Version `v` of the test bundle: versions differ only in /etc/upkeep/test.conf. */
export function tickBundle(v: string, options: { secret?: string; extraFiles?: readonly BundleFile[]; packages?: readonly string[] } = {}): HostBundle {
  const files: BundleFile[] = [
    unitFile(SERVICE, '[Unit]\nDescription=upkeep test tick\n\n[Service]\nType=oneshot\nExecStart=/bin/true\n'),
    unitFile(TIMER, '[Unit]\nDescription=upkeep test tick timer\n\n[Timer]\nOnCalendar=*-*-* 03:00:00\n\n[Install]\nWantedBy=timers.target\n'),
    unitFile(CHECK, '[Unit]\nDescription=upkeep test check\n\n[Service]\nType=oneshot\nExecStart=/bin/sh -c \'test -f /etc/upkeep/test.conf\'\n'),
    { path: '/etc/upkeep/test.conf', mode: '0644', owner: 'root:root', content: `version=${v}\n` },
    ...(options.extraFiles ?? []),
  ];
  if (options.secret !== undefined) files.push({ path: '/etc/upkeep/test.secret', mode: '0600', owner: 'root:root', content: options.secret });
  return { files, units: [TIMER], packages: options.packages ?? [] };
}

/** A generation id as the planner makes them: a hash of what the bundle installs. */
export function generationOf(bundle: HostBundle): string {
  const hash = createHash('sha256');
  for (const f of bundle.files) hash.update(`${f.path}\0${f.mode}\0${f.owner}\0`).update(f.content).update('\0');
  hash.update(bundle.units.join(',')).update(bundle.packages.join(','));
  return hash.digest('hex');
}

export function sshTo(fleet: TestFleet, host: TestHost): SshTransport {
  return new SshTransport({ host: host.name, address: host.address, port: host.port, knownHostsFile: fleet.knownHostsFile, identityFile: fleet.identityFile });
}

/** A transport that remembers every script and input it carried, to show where data travels. */
export class RecordingTransport implements Transport {
  readonly scripts: string[] = [];
  readonly inputs: Buffer[] = [];
  constructor(private readonly inner: Transport) {}
  get host(): string {
    return this.inner.host;
  }
  get roundTrips(): number {
    return this.inner.roundTrips;
  }
  run(script: string, input?: string | Uint8Array, options?: RunOptions): Promise<RunResult> {
    this.scripts.push(script);
    this.inputs.push(Buffer.from(input ?? ''));
    return this.inner.run(script, input, options);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
