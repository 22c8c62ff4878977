import { describe, expect, it } from 'vitest';
import { resolveFleet } from '../../lib/policy/resolve.ts';
import { monitorHeartbeatWarnings } from '../../lib/policy/monitor-heartbeat.ts';
import { localMailRouteWarnings } from '../../lib/policy/alert-route-rules.ts';
import { validateFleet } from '../../lib/policy/validate.ts';
import { editable } from '../fixtures/small-fleet.ts';

function issuesOf(spec: any): string[] {
  const { fleet, issues } = resolveFleet(spec);
  return [...issues, ...validateFleet(spec, fleet)].map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('validateFleet', () => {
  it('accepts the small fleet as it is', () => {
    expect(issuesOf(editable())).toEqual([]);
  });

  it('refuses a host without a backup policy unless it has a written exemption', () => {
    const spec = editable();
    delete spec.defaults.backups;
    spec.hosts.backup1.exempt = { backups: 'no' };
    const issues = issuesOf(spec);
    expect(issues).toContainEqual('hosts.web1: host has no backup policy; add one (or an exemption with a reason in exempt.backups)');
    expect(issues).toContainEqual('hosts.backup1.exempt.backups: an exemption needs a written reason (at least a sentence), got "no"');
  });

  it('refuses an sftp repository URL whose server key is not pinned: every backup would fail on it', () => {
    const spec = editable();
    delete spec.hosts.backup1.backups.repository.hostKey;
    expect(issuesOf(spec)).toContainEqual(expect.stringMatching(/^hosts\.backup1\.backups\.repository\.url: an sftp repository needs its server's ssh host key pinned \(repository\.hostKey/));
  });

  it('refuses a repository path outside the backup root or in another client\'s directory', () => {
    const outside = editable();
    outside.hosts.web1.backups = { repository: { host: 'backup1', path: '/etc/ssh' } };
    expect(issuesOf(outside)).toContainEqual(expect.stringMatching(/^hosts\.web1\.backups\.repository\.path: repository path "\/etc\/ssh" is outside the backup root \/srv\/restic/));
    const taken = editable();
    taken.hosts.web2.backups = { repository: { host: 'backup1', path: '/srv/restic/web1/inner' } };
    expect(issuesOf(taken)).toContainEqual('hosts.web2.backups.repository.path: repository path /srv/restic/web1/inner is inside the repository of "web1" (/srv/restic/web1) on backup1: each client needs a directory of its own');
  });

  it('refuses a host that backs up to itself', () => {
    const spec = editable();
    delete spec.hosts.backup1.backups;
    expect(issuesOf(spec)).toContainEqual(expect.stringContaining('hosts.backup1.backups.repository.host: host backs up to itself'));
  });

  it('proves the SLA arithmetic and shows it when it does not add up', () => {
    const spec = editable();
    spec.defaults.monitoring.interval = '5m';
    spec.defaults.monitoring.failureThreshold = 3;
    expect(issuesOf(spec)).toContainEqual(
      'hosts.web1.monitoring.checks.disk-usage: SLA response time 15m cannot be met: check interval 5m x failure threshold 3 + alert delivery 2m = 17m',
    );
  });

  it('counts every failing run of a mail-delivery check at its full wait, since runs never overlap', () => {
    const spec = editable();
    spec.hosts.web1.monitoring = {
      checks: { mail: { kind: 'mail-delivery', to: 'probe@example.com', smtp: 'smtp://mail.example.com', imap: 'imaps://mail.example.com', imapUser: 'probe', imapPassword: { env: 'PROBE' }, maxDelay: '10m' } },
    };
    // 1m x 2 + 10m + 2m = 14m was accepted; two failing runs take 2 x 10m already.
    expect(issuesOf(spec)).toContainEqual(
      'hosts.web1.monitoring.checks.mail: SLA response time 15m cannot be met: check interval 1m + failure threshold 2 x longest run 605s (delivery wait 10m + 5s) (runs never overlap) + alert delivery 2m = 1390s',
    );
    spec.hosts.web1.monitoring.checks.mail.maxDelay = '5m';
    expect(issuesOf(spec).filter((i) => i.includes('SLA'))).toEqual([]);
  });

  it("counts a monitor-heartbeat check's maximum age and a probe's timeout", () => {
    const spec = editable();
    spec.hosts.mon1 = { group: 'production', roles: ['monitor'], address: '192.0.2.8', monitoring: { heartbeat: { url: { env: 'HEARTBEAT_URL' } } } };
    spec.defaults.monitoring.sla = '9m';
    spec.hosts.web1.monitoring = { checks: { monitor: { kind: 'monitor-heartbeat', monitor: 'mon1', maxAge: '5m' }, site: { kind: 'http', url: 'https://www.example.com/' } } };
    const sla = issuesOf(spec).filter((i) => i.includes('SLA'));
    expect(sla).toEqual([
      'hosts.web1.monitoring.checks.monitor: SLA response time 9m cannot be met: monitor heartbeat max age 5m + check interval 1m x failure threshold 2 + longest run 10s + alert delivery 2m = 550s',
    ]);
    // The web check: 1m x 2 + 30s + 2m = 4m30s, within 9m.
  });

  it('refuses a security deadline that staging soak and production batches cannot meet', () => {
    const spec = editable();
    spec.groups.staging.soak = '6h';
    spec.defaults.updates.security = { deadline: '6h' };
    expect(issuesOf(spec)).toContainEqual(expect.stringMatching(/^hosts\.web1\.updates\.security\.deadline: security deadline 6h cannot be met: detection 75m .*staging soak 6h.* = /));
  });

  it('requires the staging window (and its soak) to come before every production window', () => {
    const spec = editable();
    spec.groups.staging.updates.window = { every: 'week', days: ['sun'], start: '03:00', duration: '2h', timeZone: 'Europe/Berlin' };
    expect(issuesOf(spec)).toContainEqual(expect.stringContaining('groups.production: staging group "staging" must finish its window'));
  });

  it('checks the window of every host against staging\'s, not only the first host of each group', () => {
    // backup1 is the production group's first host; web2, later, sets a window before staging's.
    const early = editable();
    early.hosts.web2.updates = { window: { every: 'week', days: ['sat'], start: '01:00', duration: '1h', timeZone: 'Europe/Berlin' } };
    expect(issuesOf(early)).toEqual([
      'hosts.web2.updates.window: staging group "staging" must finish its window (sat 02:00 Europe/Berlin) and soak before each window of host "web2" (group "production") (sat 01:00 Europe/Berlin) opens',
    ]);
    // A second staging host whose own window comes after production's.
    const late = editable();
    late.hosts.stage2 = { group: 'staging', roles: ['web'], address: '192.0.2.4', updates: { window: { every: 'week', days: ['sun'], start: '03:00', duration: '1h', timeZone: 'Europe/Berlin' } } };
    expect(issuesOf(late)).toEqual([
      'hosts.stage2.updates.window: staging host "stage2" (group "staging") must finish its window (sun 03:00 Europe/Berlin) and soak before each window of "production" (sun 02:00 Europe/Berlin) opens',
    ]);
    // A host's own window that keeps the order is fine.
    const fine = editable();
    fine.hosts.web2.updates = { window: { every: 'week', days: ['sun'], start: '04:00', duration: '1h', timeZone: 'Europe/Berlin' } };
    expect(issuesOf(fine)).toEqual([]);
  });

  it('accepts monthly windows where staging is the first Saturday and production the second Sunday', () => {
    const spec = editable();
    spec.groups.staging.updates.window = { every: 'month', nth: 1, weekday: 'sat', start: '02:00', duration: '2h', timeZone: 'Europe/Berlin' };
    spec.defaults.updates.window = { every: 'month', nth: 2, weekday: 'sun', start: '02:00', duration: '2h', timeZone: 'Europe/Berlin' };
    expect(issuesOf(spec)).toEqual([]);
  });

  it('refuses checks run from a host that is not a monitor, and two hosts on one address', () => {
    const spec = editable();
    spec.hosts.web1.monitoring = { checks: { http: { kind: 'http', url: 'https://www.example.com/', from: 'web2' } } };
    spec.hosts.web2.address = '192.0.2.2';
    const issues = issuesOf(spec);
    expect(issues).toContainEqual('hosts.web1.monitoring.checks.http.from: host "web2" runs checks for others but does not have the role "monitor"');
    expect(issues).toContainEqual('hosts.web2.address: address 192.0.2.2 port 22 is already used by host "web1"');
  });

  it('refuses a host-local check (disk usage) moved to a monitor host', () => {
    const spec = editable();
    spec.hosts.mon1 = { group: 'production', roles: ['monitor'], address: '192.0.2.8' };
    spec.hosts.web1.monitoring = { checks: { disk: { kind: 'disk-usage', from: 'mon1' } } };
    expect(issuesOf(spec)).toContainEqual(
      "hosts.web1.monitoring.checks.disk.from: a disk-usage check looks at the host's own hardware or state and cannot run from another host",
    );
  });

  it('refuses a fleet without a staging group', () => {
    const spec = editable();
    spec.groups.staging.staging = false;
    expect(issuesOf(spec)).toContainEqual('groups: no staging group: mark the group that receives every change first with staging: true');
  });

  it('refuses a bad backup calendar once, where it was written', () => {
    const spec = editable();
    spec.defaults.backups.schedule = 'Sun *-*-* 25:00';
    expect(issuesOf(spec).filter((i) => i.includes('bad calendar'))).toEqual(['defaults.backups.schedule: bad calendar expression: "25:00" is not a time such as 02:00 or 02:00:00']);
  });

  it('refuses a window time zone spelled otherwise than the IANA name (systemd and the hosts\' zoneinfo are case-sensitive), and a schedule that never runs', () => {
    const spec = editable();
    spec.defaults.updates.window.timeZone = 'europe/berlin';
    spec.defaults.backups.schedule = '*-02-30 01:30';
    spec.defaults.backups.check = { schedule: 'Sun *-*-* 05:00:00 europe/berlin' };
    expect(issuesOf(spec).filter((i) => i.startsWith('defaults.'))).toEqual([
      'defaults.updates.window.timeZone: "europe/berlin" is not spelled as the IANA time zone is: systemd and the hosts\' tz database match names exactly, capitals included — did you mean "Europe/Berlin"?',
      'defaults.backups.schedule: bad calendar expression: "*-02-30" names no date that exists: the timer would never run (systemd-analyze calendar says "Next elapse: never")',
      'defaults.backups.check.schedule: bad calendar expression: "europe/berlin" is not spelled as the IANA time zone is: systemd and the hosts\' tz database match names exactly, capitals included — did you mean "Europe/Berlin"?',
    ]);
  });

  it('collects every problem at once instead of stopping at the first', () => {
    const spec = editable();
    spec.hosts.web1.group = 'nope';
    spec.groups.staging.after = ['missing'];
    delete spec.hosts.backup1.backups;
    expect(issuesOf(spec).length).toBeGreaterThanOrEqual(3);
  });

  describe('alert routes', () => {
    const withRoute = (route: object) => {
      const spec = editable();
      spec.defaults.monitoring.routes = [{ name: 'r', ...route }];
      return issuesOf(spec);
    };

    it('accepts an Alertmanager route, an e-mail route with a login, and reminders on webhook and e-mail routes', () => {
      expect(withRoute({ alertmanager: 'http://alertmanager.example.com:9093' })).toEqual([]);
      expect(withRoute({ email: { to: ['ops@example.com'], server: 'smtps://relay.example.com', user: 'alerts', password: { env: 'SMTP_PASSWORD' } }, repeatEvery: '4h' })).toEqual([]);
      expect(withRoute({ webhook: 'https://alerts.example.com/hook', repeatEvery: '30m' })).toEqual([]);
    });

    it('needs exactly one kind per route', () => {
      expect(withRoute({})).toContainEqual('defaults.monitoring.routes.0: an alert route needs exactly one of webhook, alertmanager and email, got none');
      expect(withRoute({ webhook: 'https://a.example.com/', alertmanager: 'http://am.example.com:9093' })).toContainEqual(
        'defaults.monitoring.routes.0: an alert route needs exactly one of webhook, alertmanager and email, got webhook and alertmanager',
      );
    });

    it('refuses reminders on an Alertmanager route and a malformed reminder interval', () => {
      expect(withRoute({ alertmanager: 'http://am.example.com:9093', repeatEvery: '1h' })).toContainEqual(expect.stringMatching(/^defaults\.monitoring\.routes\.0\.repeatEvery: Alertmanager repeats notifications itself/));
      expect(withRoute({ webhook: 'https://a.example.com/', repeatEvery: '0m' })).toContainEqual('defaults.monitoring.routes.0.repeatEvery: expected a duration such as 15m, 24h or 7d, got "0m"');
    });

    it('refuses a token on an e-mail route and half an SMTP login', () => {
      expect(withRoute({ email: { to: ['ops@example.com'] }, token: { env: 'T' } })).toContainEqual(expect.stringMatching(/^defaults\.monitoring\.routes\.0\.token: an e-mail route logs in with email\.user/));
      expect(withRoute({ email: { to: ['ops@example.com'], user: 'alerts' } })).toContainEqual('defaults.monitoring.routes.0.email.user: SMTP login needs both email.user and email.password');
    });

    it('warns where an e-mail route without a server is written when the hosts that would send it have no mail server', () => {
      const warnings = (s: any) => localMailRouteWarnings(s, resolveFleet(s).fleet).map((i) => `${i.path.join('.')}: ${i.message}`);
      const spec = editable();
      spec.defaults.monitoring.routes = [{ name: 'hook', webhook: 'https://alerts.example.com/hook' }, { name: 'mail', email: { to: ['ops@example.com'] } }];
      spec.hosts.web2.roles = ['web', 'mail'];
      expect(warnings(spec)).toEqual([
        'defaults.monitoring.routes.1.email: an e-mail route without email.server mails through smtp://localhost on the host that runs the check, and backup1, stage1, web1 have no role "mail": alerts reach nobody unless a mail server runs there besides upkeep; give the route a server (a relay)',
      ]);
      // Written on a host, it is named there; a relay, or a host with its own mail server, is fine.
      spec.hosts.web1.monitoring = { routes: [{ name: 'mail', email: { to: ['ops@example.com'] } }] };
      expect(warnings(spec).map((w) => w.split(':')[0])).toEqual(['defaults.monitoring.routes.1.email', 'hosts.web1.monitoring.routes.0.email']);
      spec.defaults.monitoring.routes[1].email.server = 'smtps://relay.example.com';
      spec.hosts.web1.roles = ['web', 'mail'];
      expect(warnings(spec)).toEqual([]);
    });

    it('refuses an Alertmanager token over plain http', () => {
      expect(withRoute({ alertmanager: 'http://am.example.com:9093', token: { env: 'AM_TOKEN' } })).toContainEqual(
        'defaults.monitoring.routes.0.alertmanager: an Alertmanager that receives a token must be an https:// URL, or the token travels in the clear',
      );
    });
  });

  describe('monitor heartbeat', () => {
    it('refuses a monitor-heartbeat check on a host without a heartbeat, or on itself', () => {
      const spec = editable();
      spec.hosts.web1.monitoring = { checks: { monitor: { kind: 'monitor-heartbeat', monitor: 'web2' } } };
      spec.hosts.web2.monitoring = { heartbeat: { url: { env: 'HB_URL' } }, checks: { monitor: { kind: 'monitor-heartbeat', monitor: 'web2' } } };
      spec.hosts.stage1.monitoring = { checks: { monitor: { kind: 'monitor-heartbeat', monitor: 'stage1' } } };
      const issues = issuesOf(spec);
      expect(issues).toContainEqual('hosts.stage1.monitoring.checks.monitor.monitor: host "stage1" has no monitoring.heartbeat, so there is no liveness to watch');
      expect(issues).toContainEqual('hosts.web2.monitoring.checks.monitor.monitor: a monitor cannot watch its own heartbeat: the check would die with it');
      expect(issues.filter((i) => i.startsWith('hosts.web1.'))).toEqual([]);
    });

    it('warns about a fleet whose only monitor has no heartbeat, and not once it has one', () => {
      const spec = editable();
      spec.hosts.web1.roles = ['web', 'monitor'];
      const warnings = (s: any) => monitorHeartbeatWarnings(resolveFleet(s).fleet).map((i) => `${i.path.join('.')}: ${i.message}`);
      expect(warnings(spec)).toEqual(["hosts.web1.monitoring: the fleet's only monitor has no heartbeat (monitoring.heartbeat): if it stops, its checks stop alerting and nothing notices"]);
      spec.hosts.web1.monitoring = { heartbeat: { url: { env: 'HB_URL' } } };
      expect(warnings(spec)).toEqual([]);
    });
  });
});
