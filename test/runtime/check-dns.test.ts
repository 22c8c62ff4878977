import { createSocket, type Socket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runScriptAsync } from './run-script.ts';
import { programsAvailable } from '../programs.ts';

/** The query name of a DNS message, e.g. "example.net". */
function queryName(msg: Buffer): { name: string; end: number } {
  const labels: string[] = [];
  let i = 12;
  while (msg[i] !== 0) {
    labels.push(msg.subarray(i + 1, i + 1 + msg[i]).toString());
    i += msg[i] + 1;
  }
  return { name: labels.join('.'), end: i + 5 };
}

/** A tiny authoritative responder on 127.0.0.1: A records from `zone`, NXDOMAIN otherwise. */
function dnsServer(zone: Record<string, string>): Socket {
  const socket = createSocket('udp4');
  socket.on('message', (msg, peer) => {
    const { name, end } = queryName(msg);
    const question = msg.subarray(12, end);
    const address = zone[name.toLowerCase()];
    const type = msg.readUInt16BE(end - 4);
    const answer = address && type === 1 ? Buffer.concat([Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4]), Buffer.from(address.split('.').map(Number))]) : Buffer.alloc(0);
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2);
    header.writeUInt16BE(address ? 0x8400 : 0x8403, 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answer.length > 0 ? 1 : 0, 6);
    socket.send(Buffer.concat([header, question, answer]), peer.port, peer.address);
  });
  return socket;
}

describe.skipIf(!programsAvailable('test/runtime/check-dns.test.ts', ['dig']))('check-dns.sh with the real dig against a local DNS responder', () => {
  const server = dnsServer({ 'www.example.net': '192.0.2.80' });
  let port = '';
  beforeAll(() => new Promise<void>((resolve) => server.bind(0, '127.0.0.1', () => ((port = String(server.address().port)), resolve()))));
  afterAll(() => server.close());

  const check = (name: string, serverPort = port) =>
    runScriptAsync('check-dns.sh', [], { UPKEEP_DNS_SERVER: '127.0.0.1', UPKEEP_DNS_PORT: serverPort, UPKEEP_DNS_NAME: name, UPKEEP_DNS_TYPE: 'A' });

  it('is OK and shows the answer when the server has the record', async () => {
    const run = await check('www.example.net');
    expect(run.stdout).toBe('OK: www.example.net A 192.0.2.80 \n');
    expect(run.status).toBe(0);
  });

  it('is CRITICAL when the server has no such record', async () => {
    const run = await check('missing.example.net');
    expect(run.stdout).toBe('CRITICAL: 127.0.0.1 has no A record for missing.example.net\n');
    expect(run.status).toBe(2);
  });

  it('is CRITICAL when no server answers', async () => {
    const silent = createSocket('udp4');
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
    const run = await check('www.example.net', String(silent.address().port));
    silent.close();
    expect(run.stdout).toMatch(/^CRITICAL: 127\.0\.0\.1 does not answer/);
    expect(run.status).toBe(2);
  });
});
