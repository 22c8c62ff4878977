// ssh connections to the hosts of an inventory, as bin/apply and bin/plan --live open them: every
// host key is pinned in a private known_hosts file unless the operator brings their own; every
// transport opened is counted and closed by close().

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeKnownHosts, type Inventory } from './inventory.ts';
import { SshTransport } from './ssh-transport.ts';
import type { Transport } from './transport.ts';

export interface ConnectionOptions {
  /** ssh private key. */
  readonly identity?: string;
  /** The operator's own known_hosts; otherwise one is written from the inventory. */
  readonly knownHosts?: string;
}

export class Connections {
  readonly inventory: Inventory;
  readonly #privateDir: string;
  readonly #knownHostsFile: string;
  readonly #identity: string | undefined;
  readonly #opened = new Map<string, Transport[]>();

  constructor(inventory: Inventory, options: ConnectionOptions) {
    this.inventory = inventory;
    this.#privateDir = mkdtempSync(join(tmpdir(), 'upkeep-known-hosts-'));
    this.#knownHostsFile = options.knownHosts ? resolve(options.knownHosts) : join(this.#privateDir, 'known_hosts');
    if (!options.knownHosts) writeKnownHosts(this.inventory, this.#knownHostsFile);
    this.#identity = options.identity && resolve(options.identity);
  }

  /** A new transport to `host` (each one its own ssh connection). */
  connect(host: string): Transport {
    const target = this.inventory[host];
    if (!target) throw new Error(`${host}: not a host of this plan`);
    const transport = new SshTransport({
      host,
      address: target.address,
      port: target.port,
      knownHostsFile: this.#knownHostsFile,
      ...(this.#identity && { identityFile: this.#identity }),
    });
    this.#opened.set(host, [...(this.#opened.get(host) ?? []), transport]);
    return transport;
  }

  /** Round trips per host over every connection opened to it, hosts sorted. */
  roundTrips(): Record<string, number> {
    return Object.fromEntries([...this.#opened].map(([host, ts]) => [host, ts.reduce((n, t) => n + t.roundTrips, 0)] as const).sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  async close(): Promise<void> {
    await Promise.all([...this.#opened.values()].flat().map((t) => t.close()));
    rmSync(this.#privateDir, { recursive: true, force: true });
  }
}
