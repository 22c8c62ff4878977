// A mail-delivery check names its servers as smtp:// / smtps:// and imaps:// / imap:// URLs: a bare
// host name made curl speak HTTP to the mail host and send the IMAP password as Basic auth.

import { describe, expect, it } from 'vitest';
import { fleetShapeIssues } from '../../lib/policy/fleet-shape.ts';
import { mailChecks } from '../../policies/standard.ts';
import { editable } from '../fixtures/small-fleet.ts';

function issuesOf(spec: any): string[] {
  return fleetShapeIssues(spec).map((i) => `${i.path.join('.')}: ${i.message}`);
}

const probe = (smtp: string, imap: string) => ({
  kind: 'mail-delivery',
  to: 'probe@example.com',
  smtp,
  imap,
  imapUser: 'probe@example.com',
  imapPassword: { env: 'PROBE_MAIL_PASSWORD' },
});

describe('mail-delivery endpoints', () => {
  it('accepts smtp:// (STARTTLS required) or smtps://, and imaps:// or imap:// (STARTTLS required)', () => {
    for (const [smtp, imap] of [['smtp://mail.example.com', 'imaps://mail.example.com'], ['smtps://mail.example.com:465', 'imap://mail.example.com:143/']]) {
      const spec = editable();
      spec.hosts.web2.monitoring = { checks: { mail: probe(smtp, imap) } };
      expect(issuesOf(spec)).toEqual([]);
    }
  });

  it('refuses bare host names and other schemes, naming the policy path of each', () => {
    const spec = editable();
    spec.hosts.web2.monitoring = { checks: { mail: probe('mail.example.com', 'http://mail.example.com') } };
    expect(issuesOf(spec)).toEqual([
      'hosts.web2.monitoring.checks.mail.smtp: expected smtp://HOST[:PORT] (STARTTLS required) or smtps://HOST[:PORT]: the probe never goes out without TLS, got "mail.example.com"',
      'hosts.web2.monitoring.checks.mail.imap: expected imaps://HOST[:PORT] or imap://HOST[:PORT] (STARTTLS required): the IMAP password is only sent over TLS, got "http://mail.example.com"',
    ]);
  });

  it('mailChecks of the standard contract passes the URLs through and greets the SMTP host on port 25', () => {
    const checks = mailChecks({ smtp: 'smtp://mail.example.com', imap: 'imaps://mail.example.com', mailbox: 'probe@example.com', password: { env: 'P' }, monitor: 'mon1' });
    expect(checks.smtp).toEqual({ kind: 'smtp', target: 'mail.example.com', port: 25, from: 'mon1' });
    expect(checks['mail-delivery']).toMatchObject({ smtp: 'smtp://mail.example.com', imap: 'imaps://mail.example.com', imapUser: 'probe@example.com' });
  });
});
