// check-mail-delivery.sh against small SMTP and IMAP responders on 127.0.0.1 that speak real TLS
// (STARTTLS on SMTP, implicit TLS on IMAPS) with a certificate from a throw-away test CA, which
// curl trusts through CURL_CA_BUNDLE. Responders that offer no TLS show that the probe's password
// never travels in clear text.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createSecureContext, createServer as createTlsServer, TLSSocket, type SecureContext } from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runScriptAsync, tempDir } from './run-script.ts';
import { programsAvailable } from '../programs.ts';
import { createTestCa } from '../fixtures/test-ca.ts';

type Writer = (text: string) => void;

/**
 * Calls `onLine` for every CRLF-terminated line a client sends, with a writer for the answer;
 * `startTls` (after the answer that says so) continues the same session over TLS.
 */
function lines(socket: Socket, context: SecureContext | undefined, onLine: (line: string, write: Writer, startTls: () => void, secure: boolean) => void) {
  let buffer = '';
  let current: Socket = socket;
  let secure = socket instanceof TLSSocket;
  const write: Writer = (text) => void current.write(text);
  const listen = (s: Socket) => {
    s.on('data', (d: Buffer) => {
      buffer += d.toString();
      let end: number;
      while ((end = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (s !== current) return;
        onLine(line, write, startTls, secure);
      }
    });
    s.on('error', () => undefined);
  };
  const startTls = () => {
    if (!context) throw new Error('this responder offers no TLS');
    socket.removeAllListeners('data');
    buffer = '';
    current = new TLSSocket(socket, { isServer: true, secureContext: context });
    secure = true;
    listen(current);
  };
  listen(socket);
}

/** A minimal mail system: SMTP stores messages, IMAP searches them by subject. With `context`, SMTP offers STARTTLS and IMAP is IMAPS. */
function mailSystem(deliver: boolean, context?: SecureContext, pem?: { cert: string; key: string }) {
  const inbox: string[] = [];
  const logins: string[] = [];
  const smtp: Server = createServer((socket) => {
    socket.write('220 mail.test ESMTP\r\n');
    let data: string[] | undefined;
    lines(socket, context, (line, write, startTls, secure) => {
      if (data) {
        if (line === '.') {
          if (deliver) inbox.push(data.join('\n'));
          data = undefined;
          write('250 queued\r\n');
        } else data.push(line);
      } else if (/^EHLO/i.test(line)) write(context && !secure ? '250-mail.test\r\n250 STARTTLS\r\n' : '250 mail.test\r\n');
      else if (/^STARTTLS/i.test(line) && context && !secure) {
        write('220 go ahead\r\n');
        startTls();
      } else if (/^(MAIL|RCPT)/i.test(line)) write('250 ok\r\n');
      else if (/^DATA/i.test(line)) {
        data = [];
        write('354 go ahead\r\n');
      } else if (/^QUIT/i.test(line)) write('221 bye\r\n');
      else write('502 no\r\n');
    });
  });
  const session = (socket: Socket) => {
    socket.write('* OK IMAP4rev1 ready\r\n');
    lines(socket, undefined, (line, write) => {
      const [tag = '', command] = line.split(' ');
      switch (command?.toUpperCase()) {
        case 'CAPABILITY':
          write(`* CAPABILITY IMAP4rev1\r\n${tag} OK done\r\n`);
          break;
        case 'LOGIN':
          logins.push(line.slice(tag.length + 7));
          write(`${tag} OK logged in\r\n`);
          break;
        case 'SELECT':
          write(`* ${inbox.length} EXISTS\r\n${tag} OK [READ-WRITE] done\r\n`);
          break;
        case 'SEARCH': {
          const subject = /SUBJECT "([^"]+)"/.exec(line)?.[1] ?? '';
          const hits = inbox.map((m, i) => (m.includes(`Subject: ${subject}`) ? ` ${i + 1}` : '')).join('');
          write(`* SEARCH${hits}\r\n${tag} OK done\r\n`);
          break;
        }
        case 'LOGOUT':
          write(`* BYE\r\n${tag} OK bye\r\n`);
          break;
        default:
          write(`${tag} BAD unknown\r\n`);
      }
    });
  };
  const imap: Server = pem ? createTlsServer({ cert: pem.cert, key: pem.key }, session) : createServer(session);
  return { smtp, imap, inbox, logins, scheme: pem ? 'imaps' : 'imap' };
}

describe.skipIf(!programsAvailable('test/runtime/check-mail-delivery.test.ts', ['curl', 'openssl']))('check-mail-delivery.sh against local SMTP and IMAP responders', () => {
  const dir = tempDir({ password: 'imap "secret"\n' });
  const ca = createTestCa(join(dir, 'ca'));
  const server = ca.issue('mail', ['localhost'], ['127.0.0.1']);
  const context = createSecureContext({ cert: server.cert, key: server.key });
  const delivering = mailSystem(true, context, server);
  const losing = mailSystem(false, context, server);
  const plaintext = mailSystem(true);
  const all = [delivering, losing, plaintext].flatMap((m) => [m.smtp, m.imap]);
  const port = (s: Server) => (s.address() as AddressInfo).port;
  const env = (m: ReturnType<typeof mailSystem>) => ({
    CURL_CA_BUNDLE: ca.certFile,
    UPKEEP_MAIL_TO: 'probe@mail.test',
    UPKEEP_MAIL_SMTP: `smtp://127.0.0.1:${port(m.smtp)}`,
    UPKEEP_MAIL_IMAP: `${m.scheme}://127.0.0.1:${port(m.imap)}`,
    UPKEEP_MAIL_IMAP_USER: 'probe',
    UPKEEP_MAIL_IMAP_PASSWORD_FILE: join(dir, 'password'),
    UPKEEP_MAIL_MAX_DELAY: '2',
    UPKEEP_MAIL_POLL_SECONDS: '1',
  });

  beforeAll(async () => {
    for (const s of all) await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  });
  afterAll(() => {
    for (const s of all) s.close();
  });

  it('is OK when the probe sent over SMTP with STARTTLS shows up over IMAPS, logging in with the password from its file', async () => {
    const run = await runScriptAsync('check-mail-delivery.sh', [], env(delivering));
    expect(run.stdout).toBe('OK: probe delivered to probe@mail.test\n');
    expect(run.status).toBe(0);
    expect(delivering.inbox).toHaveLength(1);
    expect(delivering.inbox[0]).toMatch(/^Subject: upkeep-probe-\d+-\d+$/m);
    // IMAP quotes the password; the space and the quotes of the password file arrive intact.
    expect(delivering.logins[0]).toBe('probe "imap \\"secret\\""');
  });

  it('is CRITICAL when the probe does not arrive within the maximum delay', async () => {
    const run = await runScriptAsync('check-mail-delivery.sh', [], env(losing));
    expect(run.stdout).toContain('CRITICAL: probe to probe@mail.test not delivered');
    expect(run.status).toBe(2);
  });

  it('is CRITICAL when the SMTP server cannot be reached', async () => {
    const run = await runScriptAsync('check-mail-delivery.sh', [], { ...env(delivering), UPKEEP_MAIL_SMTP: 'smtp://127.0.0.1:9' });
    expect(run.stdout).toContain('CRITICAL: sending through smtp://127.0.0.1:9 failed');
    expect(run.status).toBe(2);
  });

  it('never sends the IMAP password to a server that offers no TLS', async () => {
    const run = await runScriptAsync('check-mail-delivery.sh', [], { ...env(delivering), UPKEEP_MAIL_IMAP: `imap://127.0.0.1:${port(plaintext.imap)}` });
    expect(run.stdout).toMatch(/^UNKNOWN: IMAP search at imap:\/\/127\.0\.0\.1:\d+ failed/);
    expect(run.status).toBe(3);
    expect(plaintext.logins).toEqual([]);
  });

  it('does not hand the probe to an SMTP server that offers no STARTTLS', async () => {
    const run = await runScriptAsync('check-mail-delivery.sh', [], { ...env(delivering), UPKEEP_MAIL_SMTP: `smtp://127.0.0.1:${port(plaintext.smtp)}` });
    expect(run.stdout).toContain(`CRITICAL: sending through smtp://127.0.0.1:${port(plaintext.smtp)} failed`);
    expect(run.status).toBe(2);
    expect(plaintext.inbox).toEqual([]);
  });

  it('lasts no longer than the maximum delay when a server accepts and never answers: each failing run holds back the next', { timeout: 30_000 }, async () => {
    const held: Socket[] = [];
    const stalling = createServer((socket) => void held.push(socket));
    await new Promise<void>((r) => stalling.listen(0, '127.0.0.1', r));
    try {
      const at = `127.0.0.1:${port(stalling)}`;
      for (const [stalled, said] of [
        [{ UPKEEP_MAIL_SMTP: `smtp://${at}` }, `CRITICAL: sending through smtp://${at} failed`],
        [{ UPKEEP_MAIL_IMAP: `imaps://${at}` }, `UNKNOWN: IMAP search at imaps://${at} failed`],
      ] as const) {
        const started = Date.now();
        const run = await runScriptAsync('check-mail-delivery.sh', [], { ...env(delivering), ...stalled, UPKEEP_MAIL_MAX_DELAY: '3' });
        expect(run.stdout).toContain(said);
        expect(Date.now() - started).toBeLessThan(6_000);
      }
    } finally {
      held.forEach((s) => s.destroy());
      stalling.close();
    }
  });

  it('refuses a bare host name (which curl would speak HTTP to) before connecting anywhere', async () => {
    const run = await runScriptAsync('check-mail-delivery.sh', [], { ...env(delivering), UPKEEP_MAIL_SMTP: '127.0.0.1' });
    expect(run.stdout).toBe('UNKNOWN: 127.0.0.1 is not an smtp:// or smtps:// URL\n');
    expect(run.status).toBe(3);
  });
});
