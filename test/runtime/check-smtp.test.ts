import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runScriptAsync } from './run-script.ts';
import { programsAvailable } from '../programs.ts';

/**
 * A minimal SMTP responder on 127.0.0.1 that greets with `greeting` and records the commands it
 * gets. It rejects HELP as postfix does: the contract fleet found the check failing on a real
 * postfix while it passed against a responder that answered HELP.
 */
function smtpServer(greeting: string, commands: string[]): Server {
  return createServer((socket) => {
    socket.write(`${greeting}\r\n`);
    let buffer = '';
    socket.on('data', (data) => {
      buffer += data.toString();
      let end: number;
      while ((end = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        commands.push(line.split(' ')[0].toUpperCase());
        // Like postfix: no HELP command (curl's default without a message), NOOP answered.
        if (/^EHLO/i.test(line)) socket.write('250-mail.test\r\n250 PIPELINING\r\n');
        else if (/^NOOP/i.test(line)) socket.write('250 2.0.0 Ok\r\n');
        else if (/^QUIT/i.test(line)) socket.end('221 bye\r\n');
        else socket.write('502 not implemented\r\n');
      }
    });
    socket.on('error', () => undefined);
  });
}

describe.skipIf(!programsAvailable('test/runtime/check-smtp.test.ts', ['curl']))('check-smtp.sh against a local SMTP responder', () => {
  const healthyCommands: string[] = [];
  const healthy = smtpServer('220 mail.test ESMTP', healthyCommands);
  const refusing = smtpServer('554 no service', []);
  const port = (s: Server) => String((s.address() as AddressInfo).port);

  beforeAll(async () => {
    await new Promise<void>((r) => healthy.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
  });
  afterAll(() => {
    healthy.close();
    refusing.close();
  });

  it('is OK when the server greets and answers EHLO', async () => {
    const run = await runScriptAsync('check-smtp.sh', [], { UPKEEP_SMTP_TARGET: '127.0.0.1', UPKEEP_SMTP_PORT: port(healthy) });
    expect(run.stdout).toBe(`OK: smtp://127.0.0.1:${port(healthy)} answers\n`);
    expect(run.status).toBe(0);
    expect(healthyCommands).toContain('EHLO');
  });

  it('is CRITICAL when the server refuses service', async () => {
    const run = await runScriptAsync('check-smtp.sh', [], { UPKEEP_SMTP_TARGET: '127.0.0.1', UPKEEP_SMTP_PORT: port(refusing) });
    expect(run.stdout).toMatch(/^CRITICAL: smtp:\/\/127\.0\.0\.1:\d+: /);
    expect(run.status).toBe(2);
  });
});
