// Secrets go where the policy says, and nowhere a policy could steal them from: a route token that
// reads the applier's own files or credentials, or goes out over plain http, or a URL that carries
// its credential where every local user can read it, is refused at plan time with its policy path.

import { describe, expect, it } from 'vitest';
import { resolveFleet } from '../../lib/policy/resolve.ts';
import { validateFleet } from '../../lib/policy/validate.ts';
import { editable } from '../fixtures/small-fleet.ts';

function issuesOf(spec: any): string[] {
  const { fleet, issues } = resolveFleet(spec);
  return [...issues, ...validateFleet(spec, fleet)].map((i) => `${i.path.join('.')}: ${i.message}`);
}

function withRoute(route: object, edit?: (spec: any) => void): string[] {
  const spec = editable();
  spec.defaults.monitoring.routes = [{ name: 'oncall', delivery: '2m', ...route }];
  edit?.(spec);
  return issuesOf(spec);
}

const ROUTE = 'defaults.monitoring.routes.0';

describe('where a secret may come from', () => {
  it('accepts a token from a variable of its own or a file inside the project, sent over https', () => {
    expect(withRoute({ webhook: 'https://alerts.example.com/hook', token: { env: 'ALERT_TOKEN' } })).toEqual([]);
    expect(withRoute({ webhook: 'https://alerts.example.com/hook', token: { file: 'secrets/alert-token' } })).toEqual([]);
  });

  it.each(['/proc/self/environ', '/home/deploy/.ssh/id_ed25519', '../elsewhere/token', 'secrets/../../token'])('refuses a {file} reference outside the project: %s', (file) => {
    expect(withRoute({ webhook: 'https://alerts.example.com/hook', token: { file } })).toContainEqual(
      `${ROUTE}.token.file: a secret file must be inside the project, given relative to the policy file's directory, got ${JSON.stringify(file)}`,
    );
  });

  it('refuses a {file} reference outside the project for every secret, the engine\'s included', () => {
    const issues = withRoute({ webhook: 'https://alerts.example.com/hook' }, (spec) => {
      spec.defaults.backups.password = { file: '/etc/shadow' };
      spec.provisioning = { token: { file: '/root/hcloud-token' }, operatorKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFq1Ck3LQm9W0bM3S1mJr4Ck6V0Tq2bXo3QFQ5Xn9Xz1 a'], adminNetworks: ['203.0.113.0/24'] };
    });
    expect(issues).toContainEqual(expect.stringMatching(/^defaults\.backups\.password\.file: a secret file must be inside the project/));
    expect(issues).toContainEqual(expect.stringMatching(/^provisioning\.token\.file: a secret file must be inside the project/));
  });

  it.each(['HCLOUD_TOKEN', 'TF_VAR_hcloud_token', 'UPKEEP_TERRAFORM', 'UPKEEP_ALERT_TOKEN', 'AWS_SECRET_ACCESS_KEY', 'PG_CONN_STR'])('refuses the applier\'s credential %s as a secret sent to hosts', (env) => {
    expect(withRoute({ webhook: 'https://alerts.example.com/hook', token: { env } })).toContainEqual(expect.stringMatching(new RegExp(`^${ROUTE}\\.token\\.env: this secret is sent to hosts and must not be read from ${env}`)));
  });

  it('refuses the provisioning token\'s own reference as a secret sent to hosts, whatever its name', () => {
    const issues = withRoute({ webhook: 'https://alerts.example.com/hook', token: { env: 'CLOUD_API' } }, (spec) => {
      spec.provisioning = { token: { env: 'CLOUD_API' }, operatorKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFq1Ck3LQm9W0bM3S1mJr4Ck6V0Tq2bXo3QFQ5Xn9Xz1 a'], adminNetworks: ['203.0.113.0/24'] };
      spec.hosts.web1.monitoring = { checks: { mail: { kind: 'mail-delivery', to: 'probe@example.com', smtp: 'mail.example.com', imap: 'mail.example.com', imapUser: 'probe', imapPassword: { env: 'CLOUD_API' } } } };
    });
    expect(issues).toContainEqual(`${ROUTE}.token: this secret is sent to hosts and must not be the applier's own credential (the same reference as provisioning.token)`);
    expect(issues).toContainEqual("hosts.web1.monitoring.checks.mail.imapPassword: this secret is sent to hosts and must not be the applier's own credential (the same reference as provisioning.token)");
  });
});

describe('where a token may go', () => {
  it('refuses a token sent to a plain http:// webhook', () => {
    expect(withRoute({ webhook: 'http://alerts.example.com/hook', token: { env: 'ALERT_TOKEN' } })).toContainEqual(
      `${ROUTE}.webhook: a webhook that receives a token must be an https:// URL, or the token travels in the clear`,
    );
    expect(withRoute({ webhook: 'http://alerts.example.com/hook' })).toEqual([]);
  });

  it.each([
    ['https://ops:hunter2@alerts.example.com/hook', 'a URL must not carry a user or password'],
    ['https://t0ken@alerts.example.com/hook', 'a URL must not carry a user or password'],
    ['https://alerts.example.com/hook?team=ops&token=hunter2', 'a URL must not carry a credential in its query ("token")'],
    ['https://alerts.example.com/hook?api_key=hunter2', 'a URL must not carry a credential in its query ("api_key")'],
  ])('refuses credentials inside the webhook URL %s, pointing at the token field', (webhook, message) => {
    const issues = withRoute({ webhook });
    expect(issues).toContainEqual(expect.stringContaining(`${ROUTE}.webhook: ${message}`));
    expect(issues.join('\n')).toContain("the route's token field");
  });

  it('refuses credentials inside an http check URL and a restic repository URL', () => {
    const issues = withRoute({ webhook: 'https://alerts.example.com/hook' }, (spec) => {
      spec.hosts.web1.monitoring = { checks: { http: { kind: 'http', url: 'https://admin:pw@shop.example.com/health' } } };
      spec.hosts.backup1.backups.repository = { url: 'rest:https://restic:pw@backup.example.com/backup1' };
    });
    expect(issues).toContainEqual(expect.stringContaining('hosts.web1.monitoring.checks.http.url: a URL must not carry a user or password'));
    expect(issues).toContainEqual(expect.stringContaining('hosts.backup1.backups.repository.url: a URL must not carry a user or password'));
  });
});
