import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runScriptAsync, tempDir } from './run-script.ts';
import { programsAvailable } from '../programs.ts';

/** Calls `onLine` for every CRLF-terminated line a client sends. */
function lines(socket: Socket, onLine: (line: string) => void) {
  let buffer = '';
  socket.on('data', (d) => {
    buffer += d.toString();
    let end: number;
    while ((end = buffer.indexOf('\r\n')) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      onLine(line);
    }
  });
  socket.on('error', () => undefined);
}

/** A minimal mail system on 127.0.0.1: SMTP stores messages, IMAP searches them by subject. */
function mailSystem(deliver: boolean) {
  const inbox: string[] = [];
  const logins: string[] = [];
  const smtp: Server = createServer((socket) => {
    socket.write('220 mail.test ESMTP\r\n');
    let data: string[] | undefined;
    lines(socket, (line) => {
      if (data) {
        if (line === '.') {
          if (deliver) inbox.push(data.join('\n'));
          data = undefined;
          socket.write('250 queued\r\n');
        } else data.push(line);
      } else if (/^EHLO/i.test(line)) socket.write('250 mail.test\r\n');
      else if (/^(MAIL|RCPT)/i.test(line)) socket.write('250 ok\r\n');
      else if (/^DATA/i.test(line)) {
        data = [];
        socket.write('354 go ahead\r\n');
      } else if (/^QUIT/i.test(line)) socket.end('221 bye\r\n');
      else socket.write('502 no\r\n');
    });
  });
  const imap: Server = createServer((socket) => {
    socket.write('* OK IMAP4rev1 ready\r\n');
    lines(socket, (line) => {
      const [tag, command] = line.split(' ');
      switch (command?.toUpperCase()) {
        case 'CAPABILITY':
          socket.write(`* CAPABILITY IMAP4rev1\r\n${tag} OK done\r\n`);
          break;
        case 'LOGIN':
          logins.push(line.slice(tag.length + 7));
          socket.write(`${tag} OK logged in\r\n`);
          break;
        case 'SELECT':
          socket.write(`* ${inbox.length} EXISTS\r\n${tag} OK [READ-WRITE] done\r\n`);
          break;
        case 'SEARCH': {
          const subject = /SUBJECT "([^"]+)"/.exec(line)?.[1] ?? '';
          const hits = inbox.map((m, i) => (m.includes(`Subject: ${subject}`) ? ` ${i + 1}` : '')).join('');
          socket.write(`* SEARCH${hits}\r\n${tag} OK done\r\n`);
          break;
        }
        case 'LOGOUT':
          socket.end(`* BYE\r\n${tag} OK bye\r\n`);
          break;
        default:
          socket.write(`${tag} BAD unknown\r\n`);
      }
    });
  });
  return { smtp, imap, inbox, logins };
}

describe.skipIf(!programsAvailable('test/runtime/check-mail-delivery.test.ts', ['curl']))('check-mail-delivery.sh against a local SMTP and IMAP responder', () => {
  const delivering = mailSystem(true);
  const losing = mailSystem(false);
  const port = (s: Server) => (s.address() as AddressInfo).port;
  const dir = tempDir({ password: 'imap "secret"\n' });
  const env = (m: ReturnType<typeof mailSystem>) => ({
    UPKEEP_MAIL_TO: 'probe@mail.test',
    UPKEEP_MAIL_SMTP: `smtp://127.0.0.1:${port(m.smtp)}`,
    UPKEEP_MAIL_IMAP: `imap://127.0.0.1:${port(m.imap)}`,
    UPKEEP_MAIL_IMAP_USER: 'probe',
    UPKEEP_MAIL_IMAP_PASSWORD_FILE: join(dir, 'password'),
    UPKEEP_MAIL_MAX_DELAY: '2',
    UPKEEP_MAIL_POLL_SECONDS: '1',
  });

  beforeAll(async () => {
    for (const s of [delivering.smtp, delivering.imap, losing.smtp, losing.imap]) await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  });
  afterAll(() => {
    for (const s of [delivering.smtp, delivering.imap, losing.smtp, losing.imap]) s.close();
  });

  it('is OK when the probe sent over SMTP shows up over IMAP, logging in with the password from its file', async () => {
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
});
