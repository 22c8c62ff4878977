// The alert receiver the contract fleet's webhook route reaches: an HTTPS server the test runs,
// with a certificate from the test CA, on an address the test fleet claimed (the machine's
// loopback is shared with other test runs; a claimed address is ours alone). The example's route
// name, alerts.example.com, resolves to it on every host.

import { createServer, type Server } from 'node:https';

export interface ReceivedAlert {
  /** When the receiver got it (ms since the epoch). */
  readonly at: number;
  readonly authorization: string | undefined;
  readonly path: string;
  readonly body: { readonly status: string; readonly severity: string; readonly host: string; readonly check: string; readonly kind: string; readonly message: string } & Record<string, unknown>;
}

export interface AlertReceiver {
  readonly alerts: readonly ReceivedAlert[];
  /** Resolves with the first alert received at or after `since` that matches, or rejects after `timeoutMs`. */
  waitFor(match: (alert: ReceivedAlert) => boolean, since: number, timeoutMs: number): Promise<ReceivedAlert>;
  close(): Promise<void>;
}

export async function startAlertReceiver(address: string, tls: { cert: string; key: string }): Promise<AlertReceiver> {
  const alerts: ReceivedAlert[] = [];
  const waiters = new Set<() => void>();
  const server: Server = createServer({ cert: tls.cert, key: tls.key }, (request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      try {
        alerts.push({ at: Date.now(), authorization: request.headers.authorization, path: request.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as ReceivedAlert['body'] });
        response.writeHead(202).end();
      } catch {
        response.writeHead(400).end();
      }
      for (const wake of waiters) wake();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(443, address, resolve);
  });
  return {
    alerts,
    waitFor(match, since, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = alerts.find((a) => a.at >= since && match(a));
          if (!found) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching alert within ${timeoutMs / 1000}s; received since: ${JSON.stringify(alerts.filter((a) => a.at >= since).map((a) => a.body))}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
