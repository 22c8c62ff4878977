// Debian testing as the mirror serves it, read from a local stand-in for the mirror (an http
// server on loopback with the Release files a Debian mirror has): no test here reaches the network.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPDATE_HOST_PACKAGES } from './base-image.ts';
import { debianTesting, releaseSuite } from './testing-suite.ts';

const RELEASES: Record<string, string> = {
  '/debian/dists/testing/Release': 'Origin: Debian\nLabel: Debian\nSuite: testing\nCodename: forky\nDate: Fri, 30 Oct 2026 08:08:01 UTC\nMD5Sum:\n 0123 10 main/Contents-all\n',
  '/stable-only/dists/testing/Release': 'Origin: Debian\nSuite: stable\nCodename: trixie\n',
  '/odd/dists/testing/Release': 'Origin: Debian\nSuite: testing\nCodename: ../../etc\n',
};

let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((request, response) => {
    const body = RELEASES[request.url ?? ''];
    if (body === undefined) response.writeHead(404).end();
    else response.writeHead(200).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

describe('Debian testing from the mirror', () => {
  it('is the codename the mirror gives its testing suite, built with the small image and debootstrap\'s sid script', async () => {
    expect(await debianTesting(`${base}/debian`)).toEqual({ ok: true, suite: { suite: 'testing', codename: 'forky', packages: UPDATE_HOST_PACKAGES, script: 'sid' } });
  });

  it('says why when the mirror has no testing suite, or something else under its name', async () => {
    expect(await debianTesting(`${base}/none`)).toEqual({ ok: false, reason: `the Debian mirror serves no testing suite: ${base}/none/dists/testing/Release answered HTTP 404` });
    expect(await debianTesting(`${base}/stable-only`)).toEqual({ ok: false, reason: `${base}/stable-only/dists/testing/Release is not Debian testing's Release file (Suite stable, Codename trixie)` });
    expect(await debianTesting(`${base}/odd`)).toMatchObject({ ok: false, reason: expect.stringContaining('Codename ../../etc') });
    const unreachable = await debianTesting('http://127.0.0.1:1/debian');
    expect(unreachable).toMatchObject({ ok: false, reason: expect.stringMatching(/^cannot read http:\/\/127\.0\.0\.1:1\/debian\/dists\/testing\/Release: /) });
  });

  it('reads Suite and Codename of a Release file, not fields that merely end in those words', () => {
    expect(releaseSuite('Origin: Debian\nNotSuite: x\nSuite: testing\nCodename: forky\n')).toEqual({ suite: 'testing', codename: 'forky' });
    expect(releaseSuite('Origin: Debian\n')).toEqual({});
  });
});
