// What the customer's own software brings to the hosting example's servers, set up the way they
// would have it before upkeep is applied: a web server with TLS on each web host, postfix and
// dovecot with the probe mailbox on the mail host, an authoritative nameserver for example.com on
// both nameservers, names resolving to the test addresses on every host (/etc/hosts: the hosts
// share the machine's loopback, so each service listens on its own host's address only), and the
// test CA in every host's trust store.

import type { TestCa } from '../fixtures/test-ca.ts';
import type { TestFleet, TestHost } from '../fleet/testbed.ts';

/** The example's public names and the hosts that answer for them. */
export const SITES = { 'staging.example.com': 'stage1', 'www.example.com': 'web1', 'shop.example.com': 'web2' } as const;
export const MAIL_NAME = 'mail.example.com';
export const PROBE_MAILBOX = 'probe@example.com';
/** The name of the example's webhook route, and the off-site storage box's. */
export const ALERTS_NAME = 'alerts.example.com';
export const STORAGE_BOX_NAME = 'u100000.your-storagebox.de';

async function run(host: TestHost, what: string, command: string, input?: string): Promise<void> {
  const result = await host.ssh(command, { timeoutMs: 300_000, ...(input === undefined ? {} : { input }) });
  if (result.exitCode !== 0) throw new Error(`${host.name}: ${what} failed (exit ${result.exitCode}):\n${result.stdout}\n${result.stderr}`);
}

/** Writes `content` to `path` on the host (parent directories made, mode 0600 unless given). */
function put(host: TestHost, path: string, content: string, mode = '0600'): Promise<void> {
  return run(host, `writing ${path}`, `mkdir -p "$(dirname '${path}')" && umask 077 && cat > '${path}' && chmod ${mode} '${path}'`, content);
}

function hostsFile(fleet: TestFleet, storageBox: string): string {
  const address = (name: string) => fleet.host(name).address;
  const lines = [
    ...fleet.hosts.filter((h) => h.name !== storageBox).map((h) => `${h.address} ${h.name}`),
    ...Object.entries(SITES).map(([site, host]) => `${address(host)} ${site}`),
    `${address('mail1')} ${MAIL_NAME}`,
    `${address('ns1')} ns1.example.com`,
    `${address('ns2')} ns2.example.com`,
    `${address(storageBox)} ${ALERTS_NAME} ${STORAGE_BOX_NAME}`,
  ];
  return `127.0.0.1 localhost\n${lines.join('\n')}\n`;
}

function zoneFile(fleet: TestFleet): string {
  const a = (name: string) => fleet.host(name).address;
  return [
    '$ORIGIN example.com.',
    '$TTL 300',
    '@ IN SOA ns1.example.com. hostmaster.example.com. 1 3600 900 604800 300',
    '@ IN NS ns1.example.com.',
    '@ IN NS ns2.example.com.',
    '@ IN MX 10 mail.example.com.',
    `ns1 IN A ${a('ns1')}`,
    `ns2 IN A ${a('ns2')}`,
    `mail IN A ${a('mail1')}`,
    `www IN A ${a('web1')}`,
    `shop IN A ${a('web2')}`,
    `staging IN A ${a('stage1')}`,
    '',
  ].join('\n');
}

async function webServer(host: TestHost, site: string, ca: TestCa): Promise<void> {
  const cert = ca.issue(`web-${host.name}`, [site]);
  await put(host, '/etc/ssl/upkeep-test/site.pem', cert.cert, '0644');
  await put(host, '/etc/ssl/upkeep-test/site.key', cert.key);
  await put(
    host,
    '/etc/nginx/conf.d/upkeep-test-site.conf',
    `server {\n  listen ${host.address}:443 ssl;\n  listen ${host.address}:80;\n  server_name ${site};\n  ssl_certificate /etc/ssl/upkeep-test/site.pem;\n  ssl_certificate_key /etc/ssl/upkeep-test/site.key;\n  root /var/www/html;\n}\n`,
    '0644',
  );
  await run(host, 'nginx', `rm -f /etc/nginx/sites-enabled/default && echo '${site} works' > /var/www/html/index.html && systemctl enable --now nginx.service`);
}

async function mailServer(host: TestHost, ca: TestCa, probePassword: string): Promise<void> {
  const cert = ca.issue('mail', [MAIL_NAME]);
  await put(host, '/etc/ssl/upkeep-test/mail.pem', cert.cert, '0644');
  await put(host, '/etc/ssl/upkeep-test/mail.key', cert.key);
  const settings = [
    `myhostname = ${MAIL_NAME}`,
    'mydomain = example.com',
    'myorigin = example.com',
    `mydestination = example.com, ${MAIL_NAME}, localhost`,
    // Postfix finds no interface for a loopback alias: listen on all, and bind smtpd (the only inet
    // service) to the host's address in master.cf.
    'inet_interfaces = all',
    'inet_protocols = ipv4',
    'mynetworks = 127.0.0.0/8',
    'home_mailbox = Maildir/',
    'alias_maps =',
    'alias_database =',
    'relayhost =',
    'smtpd_tls_cert_file = /etc/ssl/upkeep-test/mail.pem',
    'smtpd_tls_key_file = /etc/ssl/upkeep-test/mail.key',
    'smtpd_tls_security_level = may',
  ];
  await run(host, 'postfix', `id probe >/dev/null 2>&1 || useradd -m probe; touch /etc/postfix/main.cf; ${settings.map((s) => `postconf -e '${s}'`).join(' && ')} && sed -i -E 's/^smtp( +)inet /${host.address}:smtp\\1inet /' /etc/postfix/master.cf && systemctl enable postfix.service && systemctl restart postfix.service`);
  await put(host, '/etc/dovecot/upkeep-users', `${PROBE_MAILBOX}:{PLAIN}${probePassword}\n`, '0640');
  await put(
    host,
    '/etc/dovecot/local.conf',
    [
      `listen = ${host.address}`,
      'protocols = imap',
      'ssl = required',
      'ssl_cert = </etc/ssl/upkeep-test/mail.pem',
      'ssl_key = </etc/ssl/upkeep-test/mail.key',
      'auth_mechanisms = plain',
      'mail_location = maildir:~/Maildir',
      'passdb {\n  driver = passwd-file\n  args = scheme=PLAIN /etc/dovecot/upkeep-users\n}',
      'userdb {\n  driver = static\n  args = uid=probe gid=probe home=/home/probe\n}',
      '',
    ].join('\n'),
    '0644',
  );
  await run(host, 'dovecot', "chgrp dovecot /etc/dovecot/upkeep-users && sed -i 's/^!include auth-system.conf.ext/#&/' /etc/dovecot/conf.d/10-auth.conf && systemctl enable dovecot.service && systemctl restart dovecot.service");
}

async function nameServer(host: TestHost, zone: string): Promise<void> {
  await put(host, '/etc/nsd/example.com.zone', zone, '0644');
  await put(host, '/etc/nsd/nsd.conf', `server:\n  ip-address: ${host.address}\n  do-ip6: no\nremote-control:\n  control-enable: no\nzone:\n  name: example.com\n  zonefile: /etc/nsd/example.com.zone\n`, '0644');
  await run(host, 'nsd', 'systemctl enable nsd.service && systemctl restart nsd.service');
}

/**
 * Sets up every host of the contract fleet in parallel: names and trust on all, then the services
 * of its roles. `storageBox` names the host standing in for the off-site storage box.
 */
export async function installCustomerServices(fleet: TestFleet, options: { ca: TestCa; storageBox: string; probePassword: string }): Promise<void> {
  const hosts = hostsFile(fleet, options.storageBox);
  const zone = zoneFile(fleet);
  await Promise.all(
    fleet.hosts.map(async (host) => {
      await put(host, '/etc/hosts', hosts, '0644');
      await put(host, '/usr/local/share/ca-certificates/upkeep-test-ca.crt', options.ca.cert, '0644');
      await run(host, 'update-ca-certificates', 'update-ca-certificates >/dev/null');
      const site = Object.entries(SITES).find(([, name]) => name === host.name)?.[0];
      if (site !== undefined) await webServer(host, site, options.ca);
      if (host.name === 'mail1') await mailServer(host, options.ca, options.probePassword);
      if (host.name === 'ns1' || host.name === 'ns2') await nameServer(host, zone);
      if (host.name === options.storageBox) await run(host, 'storage box user', 'id u100000 >/dev/null 2>&1 || useradd -m u100000; mkdir -p /home/u100000/upkeep');
    }),
  );
}
