// Test hosts share the machine's network namespace and each listens on 127.0.1.N:22. A server on
// the machine itself listening on port 22 of every address (0.0.0.0 or ::, e.g. the machine's own
// sshd) makes those binds fail, and the hosts would never come up: detect it up front instead.
import { readFileSync } from 'node:fs';

const LISTEN = '0A';

/** Whether a /proc/net/tcp or /proc/net/tcp6 table has a socket listening on port on every address. */
export function listensOnAllAddresses(table: string, port: number): boolean {
  const wantedPort = port.toString(16).toUpperCase().padStart(4, '0');
  return table
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .some(([, local, , state]) => {
      const [address, localPort] = local?.split(':') ?? [];
      return state === LISTEN && localPort === wantedPort && address !== undefined && /^0+$/.test(address);
    });
}

/** A reason the test hosts cannot listen on port 22 here, or undefined when they can. */
export function sshPortBlocked(): string | undefined {
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let table: string;
    try {
      table = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    if (listensOnAllAddresses(table, 22)) {
      return `a server on this machine listens on port 22 of every address (${file}), so test hosts cannot listen on 127.0.1.N:22; bind it to specific addresses or stop it`;
    }
  }
  return undefined;
}
