import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PolicyError, type PolicyIssue } from '../../lib/policy/errors.ts';
import { checkFleetShape, loadPolicy } from '../../lib/policy/load.ts';

const dir = mkdtempSync(join(tmpdir(), 'upkeep-load-'));

function policyFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

async function loadError(file: string): Promise<PolicyError> {
  const error = await loadPolicy(file).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PolicyError);
  return error as PolicyError;
}

const MINIMAL = `name: tiny
groups:
  staging: { staging: true }
hosts:
  web1:
    group: staging
    address: 192.0.2.1
`;

describe('loadPolicy with a YAML file', () => {
  it('returns the fleet as written', async () => {
    const { spec, source } = await loadPolicy(policyFile('tiny.yaml', MINIMAL));
    expect(spec).toEqual({ name: 'tiny', groups: { staging: { staging: true } }, hosts: { web1: { group: 'staging', address: '192.0.2.1' } } });
    expect(source.file).toBe(join(dir, 'tiny.yaml'));
  });

  it('loads the bundled YAML example', async () => {
    const { spec } = await loadPolicy('examples/yaml/fleet.yaml');
    expect(Object.keys(spec.hosts).sort()).toEqual(['backup1', 'mon1', 'stage1', 'web1', 'web2']);
    expect(spec.groups.production.after).toEqual(['staging']);
  });

  it('locates a policy path at the line and column where it is written', async () => {
    const { source } = await loadPolicy(policyFile('locate.yaml', MINIMAL));
    expect(source.locate(['hosts', 'web1', 'address'])).toEqual({ line: 7, column: 5 });
    expect(source.locate(['groups', 'staging', 'staging'])).toEqual({ line: 3, column: 14 });
  });

  it('locates a key that is not there at the nearest thing that is', async () => {
    const { source } = await loadPolicy(policyFile('nearest.yaml', MINIMAL));
    expect(source.locate(['hosts', 'web1', 'backups', 'repository'])).toEqual({ line: 5, column: 3 });
  });

  it('locates items of lists by index', async () => {
    const { source } = await loadPolicy(policyFile('list.yaml', `${MINIMAL}    roles:\n      - web\n      - mail\n`));
    expect(source.locate(['hosts', 'web1', 'roles', 1])).toEqual({ line: 10, column: 9 });
  });

  it('names file, line and column of an unknown key and suggests the key that was meant', async () => {
    const file = policyFile('typo.yaml', `${MINIMAL}    backups:\n      retension: { daily: 30 }\n`);
    const error = await loadError(file);
    expect(error.issues).toEqual([{ path: ['hosts', 'web1', 'backups', 'retension'], message: 'unknown key "retension" — did you mean "retention"?' }]);
    expect(error.message).toBe(`${file}:9:7: hosts.web1.backups.retension: unknown key "retension" — did you mean "retention"?`);
  });

  it('turns a host listed twice into an error at the second entry instead of keeping the last one', async () => {
    const file = policyFile('twice.yaml', `${MINIMAL}  web1:\n    group: staging\n    address: 192.0.2.2\n`);
    const error = await loadError(file);
    expect(error.issues).toHaveLength(1);
    expect(error.message).toMatch(new RegExp(`^${file}:8:3: hosts\\.web1: duplicate key "web1"`));
  });

  it('finds a key repeated far apart in a long list of hosts', async () => {
    const hosts = Array.from({ length: 300 }, (_, i) => `  web${i}: { group: staging, address: 192.0.2.${i % 250} }\n`).join('');
    const file = policyFile('long.yaml', `name: long\ngroups:\n  staging: { staging: true }\nhosts:\n${hosts}  web7: { group: staging, address: 192.0.2.251 }\n`);
    const error = await loadError(file);
    expect(error.message).toBe(`${file}:305:3: hosts.web7: duplicate key "web7": each key may appear only once (the later entry would silently replace the first)`);
  });

  it('lets a policy reuse a block with a YAML merge key', async () => {
    const file = policyFile(
      'merge.yaml',
      `name: merged
groups:
  staging: { staging: true }
hosts:
  web1: &web { group: staging, roles: [web], address: 192.0.2.1 }
  web2:
    <<: *web
    address: 192.0.2.2
`,
    );
    const { spec } = await loadPolicy(file);
    expect(spec.hosts.web2).toEqual({ group: 'staging', roles: ['web'], address: '192.0.2.2' });
  });

  describe('YAML aliases', () => {
    // "Billion laughs": a large anchored list, aliased in lists that are aliased in turn. Parsed
    // as written, it is ~470 KB; expanded, billions of values.
    function aliasBomb(): string {
      const lines = ['name: bomb', `l0: &l0 [${Array(94_000).fill('lol').join(', ')}]`];
      for (let i = 1; i <= 9; i++) lines.push(`l${i}: &l${i} [${Array(10).fill(`*l${i - 1}`).join(', ')}]`);
      return `${lines.join('\n')}\n`;
    }

    it('refuses aliases that expand the file far beyond its own size, at the alias that does it', { timeout: 20_000 }, async () => {
      const text = aliasBomb();
      expect(text.length).toBeGreaterThan(400_000);
      const file = policyFile('bomb.yaml', text);
      const error = await loadError(file);
      // l1 holds ten times l0, with the rest of the file about half the limit: the first alias to l1 goes past it.
      expect(error.message).toMatch(new RegExp(`^${file}:4:\\d+: l2\\[0\\]: YAML aliases expand this file to more than \\d+ values \\(20 times the \\d+ it holds\\) by alias \\*l1: `));
    });

    it('refuses an alias inside the value it names (a policy that would be infinite)', async () => {
      const error = await loadError(policyFile('cycle.yaml', 'name: loop\nhosts: &h\n  web1: *h\n'));
      expect(error.message).toBe(`${join(dir, 'cycle.yaml')}:3:9: hosts.web1: YAML alias *h refers to a value that contains it: a policy cannot be infinite`);
    });

    it('still lets a large fleet reuse one block in thousands of places', async () => {
      const hosts = Array.from({ length: 3000 }, (_, i) => `  - { <<: *host, name: web${i} }`).join('\n');
      const file = policyFile('many.yaml', `name: x\nhost: &host { group: production, roles: [web] }\nlist:\n${hosts}\n`);
      const error = await loadError(file);
      // Only the fleet schema complains (about the made-up keys): the aliases are fine.
      expect(error.message).not.toContain('alias');
    });
  });

  it('reports a YAML syntax error with its position', async () => {
    const file = policyFile('syntax.yaml', 'name: tiny\ngroups: [staging\nhosts: {}\n');
    const error = await loadError(file);
    expect(error.message).toContain(`${file}:3:1: `);
    expect(error.message).toContain('YAML syntax error');
  });

  it('reports every shape problem at once, in file order, one message per mistake', async () => {
    const file = policyFile(
      'many.yaml',
      `name: tiny
groups:
  staging: { staging: true, soak: 2 hours }
hosts:
  web1:
    group: staging
    address: 192.0.2.1
    updates:
      reboot: sometimes
    monitoring:
      checks:
        web: { kind: http, url: "https://example.com/", expectStatus: "200" }
        mx: { kind: smtpp, target: mx.example.com }
    backups:
      repository: { host: backup1, url: "sftp:backup1:/srv" }
`,
    );
    const error = await loadError(file);
    expect(error.message.split('\n').slice(1)).toEqual([
      `  - ${file}:3:29: groups.staging.soak: expected a duration such as 15m, 24h or 7d, got "2 hours"`,
      `  - ${file}:9:7: hosts.web1.updates.reboot: expected one of "never", "when-needed" or "always", got "sometimes"`,
      `  - ${file}:12:57: hosts.web1.monitoring.checks.web.expectStatus: expected a whole number, got "200"`,
      `  - ${file}:13:15: hosts.web1.monitoring.checks.mx.kind: unknown kind "smtpp" — did you mean "smtp"?`,
      `  - ${file}:15:7: hosts.web1.backups.repository: give only one of "host" or "url", not several`,
    ]);
  });

  it('says which file does not exist', async () => {
    const file = join(dir, 'missing.yaml');
    const error = await loadError(file);
    expect(error.message).toBe(`${file}: (fleet): no such policy file`);
  });

  it('refuses a file type it cannot load', async () => {
    const error = await loadError(policyFile('fleet.json', '{}'));
    expect(error.message).toContain('unsupported policy file type ".json"');
  });

  it('refuses an empty file', async () => {
    const error = await loadError(policyFile('empty.yaml', '# nothing yet\n'));
    expect(error.issues).toEqual([{ path: [], message: 'expected a fleet (a mapping with name, groups and hosts), got nothing' }]);
  });
});

describe('loadPolicy with a TypeScript module', () => {
  it('takes the default export', async () => {
    const { spec, source } = await loadPolicy('examples/existing-hosts/fleet.ts');
    expect(spec.name).toBe('existing');
    expect(source.locate(['hosts'])).toBeUndefined();
  });

  it('takes a named `fleet` export when there is no default export', async () => {
    const file = policyFile('named.ts', `export const fleet = { name: 'named', groups: { s: { staging: true } }, hosts: { h1: { group: 's', address: '192.0.2.9' } } };\n`);
    const { spec } = await loadPolicy(file);
    expect(spec.name).toBe('named');
  });

  it('says which module has no fleet', async () => {
    const file = policyFile('nofleet.ts', 'export const something = 1;\n');
    const error = await loadError(file);
    expect(error.message).toBe(`${file}: (fleet): the policy module has no fleet: export it as the default export or as \`export const fleet\``);
  });

  it('checks the shape of a TypeScript fleet too, naming the file and the policy path', async () => {
    const file = policyFile('badname.ts', `export default { name: 'x', groups: { s: { staging: true } }, hosts: { 'web1;reboot': { group: 's', address: '192.0.2.9' } } };\n`);
    const error = await loadError(file);
    expect(error.message).toBe(`${file}: hosts."web1;reboot": "web1;reboot" is not a valid name: expected a host name of lower-case letters, digits and "-"`);
  });

  it('reports a module that throws while loading as a policy error naming the file', async () => {
    const file = policyFile('throws.ts', `throw new Error('boom');\nexport default {};\n`);
    const error = await loadError(file);
    expect(error.message).toBe(`${file}: (fleet): the policy module failed to load: boom`);
  });
});

/** The issues checkFleetShape throws for `spec`; fails the test when it throws nothing. */
function shapeIssues(spec: unknown): readonly PolicyIssue[] {
  try {
    checkFleetShape(spec);
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyError);
    return (error as PolicyError).issues;
  }
  throw new Error('checkFleetShape accepted the fleet');
}

describe('checkFleetShape', () => {
  const fleet = { name: 'x', groups: { s: { staging: true } }, hosts: { h1: { group: 's', address: '192.0.2.9' } } };

  it('accepts a well-formed fleet, also when options are present but undefined', () => {
    expect(() => checkFleetShape({ ...fleet, defaults: undefined })).not.toThrow();
  });

  it('reports one message for a secret reference with a misspelt key', () => {
    expect(shapeIssues({ ...fleet, defaults: { backups: { password: { enw: 'RESTIC_PASSWORD' } } } })).toEqual([
      { path: ['defaults', 'backups', 'password', 'enw'], message: 'unknown key "enw" — did you mean "env"?' },
    ]);
  });

  it('reports only the relevant branch of a window, not every branch of the union', () => {
    const window = { every: 'month', nth: 5, weekday: 'sun', start: '02:00', duration: '2h' };
    expect(shapeIssues({ ...fleet, defaults: { updates: { window } } })).toEqual([
      { path: ['defaults', 'updates', 'window', 'nth'], message: 'expected one of 1, 2, 3, 4 or "last", got 5' },
    ]);
  });

  it('says a companion key needs its partner', () => {
    const hosts = { h1: { group: 's', provision: { serverType: 'cx22' }, hostKey: 'ssh-ed25519 AAAAC3Nza' } };
    expect(shapeIssues({ ...fleet, hosts })).toEqual([{ path: ['hosts', 'h1', 'hostKey'], message: '"hostKey" only applies together with "address"' }]);
  });
});
