// plan.md is the pull request's comment: at 1,000 hosts it still fits GitHub's 65,536 characters
// with its marker, its summary, the contract warning with every distinct change, and the
// destroy/replace banner; the hosts that change alike are one fold, the exceptions their own.

import { describe, expect, it } from 'vitest';
import { compileFleet } from '../../lib/compile/fleet.ts';
import { buildPlan, type BaseHost } from '../../lib/plan/build-plan.ts';
import { diffContracts } from '../../lib/plan/contract-diff.ts';
import { renderInfraSection } from '../../lib/plan/infra-diff.ts';
import { MARKDOWN_LIMIT, renderPlanMarkdown, stickyMarker, summaryLine } from '../../lib/plan/markdown.ts';
import type { PlanDocument } from '../../lib/plan/plan-format.ts';
import type { FleetSpec } from '../../lib/policy/model.ts';
import { prepareFleet } from '../../lib/policy/prepare.ts';
import { generatedFleet } from '../fixtures/generated-fleet.ts';

/** GitHub's limit for the body of an issue or pull-request comment. */
const GITHUB_COMMENT_LIMIT = 65_536;

const metadata = { created_at: '2026-01-01T00:00:00Z', upkeep_version: 'test' };

function planOf(spec: FleetSpec, base?: PlanDocument): PlanDocument {
  const fleet = prepareFleet(spec);
  const compiled = compileFleet(fleet);
  const baseHosts = new Map<string, BaseHost>(Object.values(base?.hosts ?? {}).map((h) => [h.name, { generation: h.generation, files: h.files, units: h.units, packages: h.packages }]));
  return buildPlan({ fleet, hosts: compiled.hosts, base: baseHosts, policy: 'fleet.ts', metadata }).document;
}

describe('plan.md of a 1,000-host fleet, as a pull-request comment', { timeout: 300_000 }, () => {
  const before = generatedFleet(1000);
  const base = planOf(before);
  const after = structuredClone(before) as { -readonly [K in keyof FleetSpec]: any };
  // A weakening every host shares. (Retention is no longer it: it runs on the backup hosts.) The
  // files it changes are named after each host: they still change alike.
  after.defaults.monitoring.checks['disk-usage'] = { kind: 'disk-usage', interval: '2m' };
  // Two exceptions: hosts with changes of their own.
  after.hosts.web00500.monitoring.checks.ping = { kind: 'failed-units', interval: '5m' };
  after.hosts.web00501.backups.exclude = ['/var/cache/app'];
  const plan = planOf(after as FleetSpec, base);
  const servers = Object.keys(plan.hosts).map((h) => `hcloud_server.${h}`);
  const infra = { add: [], change: [], replace: servers, destroy: [] };
  const contract = diffContracts(base.hosts, plan.hosts);
  const md = renderPlanMarkdown(plan, { contract, sections: [(compact) => renderInfraSection(infra, 'a test', compact)] });

  it('fits one comment, starting with the marker a bot finds it by, then the summary', () => {
    expect(md.length).toBeLessThanOrEqual(MARKDOWN_LIMIT);
    expect(MARKDOWN_LIMIT).toBeLessThan(GITHUB_COMMENT_LIMIT);
    const lines = md.split('\n');
    expect(lines[0]).toBe(stickyMarker('bench'));
    expect(lines[0]).toBe('<!-- upkeep-plan fleet=bench -->');
    expect(lines[3]).toBe(`**${summaryLine(plan)}**`);
    expect(plan.summary.hostsChanged).toBe(1000);
  });

  it('keeps the contract warning with every distinct change, and the destroy/replace banner with its count', () => {
    expect(md).toContain('> **WARNING: this change WEAKENS the maintenance promise on 1000 host(s).**');
    const weakenings = new Set(contract.filter((c) => c.weakens).map((c) => c.what));
    expect(weakenings).toEqual(new Set(['check disk-usage runs less often']));
    expect(md).toMatch(/- \*\*check disk-usage runs less often\*\* on 1000 hosts \(backup00000, backup00001, .* and 990 more\): every 1m → every 2m/);
    expect(md).toContain('- **check ping added** on web00500');
    expect(md).toContain('> **WARNING: 1000 server(s), volume(s) or address(es) will be DESTROYED or REPLACED.**');
    expect(md).toContain('**0 to add, 0 to change, 1000 to replace, 0 to destroy**');
    expect(md).toContain('- _… and 980 more resource(s) (plan.json lists them all)_');
  });

  it('shows the hosts that change alike as one fold and the exceptions as their own', () => {
    const folds = md.split('\n').filter((l) => l.startsWith('<details><summary>'));
    expect(folds[0]).toBe(
      '<details><summary>The same changes on 998 hosts (backup00000, backup00001, backup00002, backup00003, backup00004, monitor00000, web00000, web00001, web00002, web00003 and 988 more): 0 to create, 2 to update, 0 to delete</summary>',
    );
    expect(folds).toHaveLength(3);
    // The group's table names the files each host has under its own name.
    // The group's table names the files each host has under its own name as {host}.
    expect(md).toContain('| update (content) | `/etc/upkeep/checks/{host}-disk-usage.env` | 0644 | root:root | differs per host |');
    expect(folds.some((f) => f.startsWith('<details><summary>web00500 (production): '))).toBe(true);
    expect(folds.some((f) => f.startsWith('<details><summary>web00501 (production): '))).toBe(true);
    expect(md).not.toContain('_Truncated:');
  });

  it("a fleet's first plan shows its hosts alike too, though each host's backup password is derived for it", () => {
    // Every file is created, the derived backup password too: once per host, named after it.
    const first = renderPlanMarkdown(base);
    expect(first).toMatch(/<details><summary>The same changes on 9\d\d hosts \(web00000, web00001, .*\): 5\d to create, 0 to update, 0 to delete<\/summary>/);
    expect(first).toContain('| secret derived for `upkeep restic repository {host}` from env `RESTIC_PASSWORD` |');
    // The backup hosts and the monitor (a check of every host) are exceptions too large to follow it.
    expect(first).toContain('_Truncated: 6 more host(s) with changes are not shown here (backup00000, backup00001, backup00002 and 3 more)');
  });

  it('skips a fold too large for the comment and still shows the smaller ones after it', () => {
    // A host with a change of its own, whose fold comes after the backup hosts' and the monitor's
    // (exceptions are in name order), which do not fit.
    const spec = structuredClone(before) as { -readonly [K in keyof FleetSpec]: any };
    spec.hosts['zz-edge'] = { ...structuredClone(spec.hosts.web00600), monitoring: { checks: { ...spec.hosts.web00600.monitoring.checks, units: { kind: 'failed-units', interval: '3m' } } } };
    const md = renderPlanMarkdown(planOf(spec as FleetSpec));
    expect(md.length).toBeLessThanOrEqual(MARKDOWN_LIMIT);
    expect(md).toContain('<details><summary>zz-edge (production): ');
    expect(md).toContain('_Truncated: 6 more host(s) with changes are not shown here (backup00000, backup00001, backup00002 and 3 more)');
  });
});
