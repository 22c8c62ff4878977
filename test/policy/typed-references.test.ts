// The `@ts-expect-error` lines are the assertions of this file: `npm test` type-checks it first,
// and a reference that the compiler stopped rejecting makes that check fail.
import { describe, expect, it } from 'vitest';
import { defineFleet } from '../../lib/policy/model.ts';

const window = { every: 'week', days: ['sun'], start: '02:00', duration: '2h' } as const;

describe('defineFleet checks references at compile time', () => {
  it('accepts references to groups and hosts that exist', () => {
    const fleet = defineFleet({
      name: 'ok',
      groups: { staging: { staging: true }, prod: { after: ['staging'] } },
      hosts: {
        backup1: { group: 'prod', roles: ['backup'], address: '192.0.2.10' },
        web1: { group: 'prod', address: '192.0.2.11', backups: { repository: { host: 'backup1' } }, updates: { window } },
      },
    });
    expect(Object.keys(fleet.hosts)).toEqual(['backup1', 'web1']);
  });

  it('rejects a group, an `after` or a backup host that does not exist', () => {
    const build = () =>
      defineFleet({
        name: 'bad',
        groups: {
          staging: { staging: true },
          // @ts-expect-error "prdo" is not a group
          prod: { after: ['prdo'] },
        },
        hosts: {
          // @ts-expect-error "stagign" is not a group
          web1: { group: 'stagign', address: '192.0.2.11' },
          // @ts-expect-error "backup9" is not a host
          web2: { group: 'prod', address: '192.0.2.12', backups: { repository: { host: 'backup9' } } },
        },
      });
    expect(build().name).toBe('bad');
  });
});
