// send-email.sh against an SMTP server in this process that records every command: a mail goes
// through with the envelope and headers an operator expects, and a login is never sent where the
// server offers no TLS (curl --ssl-reqd stops before AUTH).

import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { programsAvailable } from '../programs.ts';
import { runScriptAsync, tempDir } from './run-script.ts';

/** A plain-text SMTP server (no STARTTLS offered) that accepts every mail and records the dialogue. */
function smtpServer(): { server: Server; commands: string[]; messages: string[] } {
  const commands: string[] = [];
  const messages: string[] = [];
  const server = createServer((socket) => {
    let buffer = '';
    let data: string[] | undefined;
    socket.write('220 test ESMTP\r\n');
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      for (let i = buffer.indexOf('\r\n'); i >= 0; i = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        if (data) {
          if (line === '.') {
            messages.push(data.join('\n'));
            data = undefined;
            socket.write('250 queued\r\n');
          } else data.push(line);
          continue;
        }
        commands.push(line);
        const verb = line.split(' ')[0].toUpperCase();
        if (verb === 'EHLO') socket.write('250-test\r\n250 AUTH PLAIN LOGIN\r\n');
        else if (verb === 'DATA') {
          data = [];
          socket.write('354 go on\r\n');
        } else if (verb === 'QUIT') socket.end('221 bye\r\n');
        else if (verb === 'AUTH') socket.write('235 ok\r\n');
        else socket.write('250 ok\r\n');
      }
    });
  });
  return { server, commands, messages };
}

describe.skipIf(!programsAvailable('test/runtime/send-email.test.ts', ['curl']))('send-email.sh', () => {
  const smtp = smtpServer();
  let url = '';
  beforeAll(async () => {
    await new Promise<void>((resolve) => smtp.server.listen(0, '127.0.0.1', resolve));
    url = `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => smtp.server.close(() => resolve())));

  const env = (extra: Record<string, string> = {}) => ({
    UPKEEP_ROUTE_SMTP_SERVER: url,
    UPKEEP_ROUTE_MAIL_FROM: 'upkeep@web1',
    UPKEEP_ROUTE_MAIL_TO: 'ops@example.com oncall@example.com',
    UPKEEP_CHECK_SUBJECT: 'web1',
    UPKEEP_CHECK_NAME: 'site',
    UPKEEP_CHECK_KIND: 'http',
    UPKEEP_FAILING_SINCE: '1796000000',
    ...extra,
  });

  it('mails the alert to every recipient, with the check in the subject and the message in the body', async () => {
    const before = smtp.messages.length;
    const run = await runScriptAsync('send-email.sh', ['firing', 'critical', 'answered 503\nSubject: injected', '2', '0'], env());
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(smtp.commands).toContain('MAIL FROM:<upkeep@web1>');
    expect(smtp.commands).toContain('RCPT TO:<ops@example.com>');
    expect(smtp.commands).toContain('RCPT TO:<oncall@example.com>');
    const message = smtp.messages[before];
    const split = message.indexOf('\n\n');
    const [headers, body] = [message.slice(0, split), message.slice(split + 2)];
    expect(headers).toContain('Subject: [upkeep] FIRING: site on web1 is critical');
    expect(headers).toContain('To: ops@example.com, oncall@example.com');
    expect(headers.match(/^Subject:/gm)).toHaveLength(1);
    expect(body).toContain('Failing since: 2026-11-30T');
    expect(body).toContain('answered 503');
  });

  it('never sends a login to a server without TLS', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'password'), 'p4ss-w0rd\n', { mode: 0o600 });
    const before = smtp.commands.length;
    const run = await runScriptAsync('send-email.sh', ['firing', 'critical', 'down', '2', '0'], env({ UPKEEP_ROUTE_SMTP_USER: 'alerts', UPKEEP_ROUTE_SMTP_PASSWORD_FILE: join(dir, 'password') }));
    expect(run.status).not.toBe(0);
    const dialogue = smtp.commands.slice(before);
    expect(dialogue[0]).toMatch(/^EHLO /);
    expect(dialogue.some((c) => /^AUTH/i.test(c))).toBe(false);
    expect(dialogue.join('\n')).not.toContain('p4ss-w0rd');
    expect(run.stderr).not.toContain('p4ss-w0rd');
  });
});
