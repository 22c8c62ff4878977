// plan.md is posted as a pull-request comment. A policy (or a host, or the engine) that puts
// markup into a value must not change what the reviewer sees: the same headings, folds, tables and
// lists as a benign plan, no HTML of its own, no link, no @mention. And a mitigation shows every
// path it writes on its host.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderDriftSection } from '../../lib/hosts/live-base.ts';
import { renderInfraSection } from '../../lib/plan/infra-diff.ts';
import { mdCode, mdText } from '../../lib/plan/markdown-text.ts';
import { stickyMarker } from '../../lib/plan/markdown.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');

/** Markup a value may try: close the fold, add HTML, a link, an image, a mention, a table, emphasis, code, an entity. */
const MARKUP = '</details><img src=x onerror=alert(1)> [x](http://evil.example/) ![i](http://evil.example/i.png) @octocat |a|b| *b* _u_ `c` ``` ~~s~~ # h &amp; \\';
const HOSTILE_FILE = `secrets/${MARKUP}`;
const HOSTILE_DROP_IN = '/etc/ssh/sshd_config.d/@octocat_x_~~y~~.conf';

/** bin/plan's plan.md for the small fleet, with its secret files and a mitigation drop-in set by `values`. */
function planMarkdown(values: { file: string; dropIn: string }): string {
  const work = mkdtempSync(join(tmpdir(), 'upkeep-md-'));
  const policy = join(work, 'fleet.ts');
  writeFileSync(
    policy,
    [
      `import { editable } from ${JSON.stringify(join(ROOT, 'test/fixtures/small-fleet.ts'))};`,
      'const spec = editable();',
      `spec.defaults.backups.password = { file: ${JSON.stringify(values.file)} };`,
      `spec.defaults.monitoring.routes[0].token = { file: ${JSON.stringify(`${values.file}-token`)} };`,
      `spec.hosts.web1.updates = { mitigations: [{ id: 'CVE-2026-1234', package: 'openssh-server', fixedIn: '1:9.2p1-2+deb12u9', action: { dropIn: { path: ${JSON.stringify(values.dropIn)}, content: 'X11Forwarding no\\n' } } }] };`,
      'export default spec;',
    ].join('\n'),
  );
  const out = join(work, 'out');
  try {
    execFileSync(join(ROOT, 'bin', 'plan'), [policy, '--out', out], { cwd: work, env: { ...process.env, NO_COLOR: '1' }, stdio: 'pipe' });
  } catch (error) {
    const e = error as { status: number; stderr: Buffer };
    if (e.status !== 2) throw new Error(`bin/plan failed (${e.status}): ${e.stderr}`);
  }
  return readFileSync(join(out, 'plan.md'), 'utf8');
}

/** What the markdown renders as, in outline: headings, folds, table rows, list items, paragraphs. */
function structure(md: string) {
  const lines = md.split('\n');
  return {
    lines: lines.length,
    headings: lines.filter((l) => /^#{1,6} /.test(l)).map((l) => l.replace(/:.*/, '')),
    // In a code span "</details>" is text; outside one it would close the fold.
    detailsOpen: outsideCode(md).split('<details>').length - 1,
    detailsClose: outsideCode(md).split('</details>').length - 1,
    summaries: outsideCode(md).split('<summary>').length - 1,
    tableRows: lines.filter((l) => l.startsWith('|')).map((l) => l.split(/(?<!\\)\|/).length),
    listItems: lines.filter((l) => /^(- |\d+\. )/.test(l)).length,
  };
}

/** The text outside inline code spans (where GitHub renders neither markup nor mentions). */
function outsideCode(md: string): string {
  return md.replace(/(`+)(?!`)[\s\S]*?(?<!`)\1(?!`)/g, ' ');
}

function expectInert(md: string): void {
  // The infrastructure and contract sections' own warnings are quotes; the first line is the sticky
  // comment's marker, an HTML comment (stickyMarker's own test shows a name cannot end it).
  const marker = md.startsWith('<!--') ? md.split('\n')[0]! : '';
  if (marker !== '') expect(marker).toMatch(/^<!-- upkeep-plan fleet=[^<>]* -->$/);
  const prose = outsideCode(md.slice(marker.length)).replace(/^> \*\*WARNING/gm, '**WARNING');
  expect(prose.replace(/<\/?(details|summary)>/g, '')).not.toMatch(/[<>]/);
  expect(prose).not.toMatch(/@(?!&#8203;)/);
  expect(prose).not.toMatch(/\]\(|!\[/);
  for (const line of md.slice(marker.length).split('\n')) expect(line).not.toMatch(/^(#{1,6} (?!upkeep plan|Maintenance contract|Rollout order|Hosts|Infrastructure|Mitigations|Drift)|>(?! \*\*WARNING)|<(?!\/?details|summary))/);
}

describe('plan.md of a policy with markup in every value that reaches it', () => {
  const benign = planMarkdown({ file: 'secrets/restic-password', dropIn: '/etc/ssh/sshd_config.d/no-x11.conf' });
  const hostile = planMarkdown({ file: HOSTILE_FILE, dropIn: HOSTILE_DROP_IN });

  it('has the structure of a benign plan: headings, folds, table rows and list items', () => {
    expect(structure(hostile)).toEqual(structure(benign));
  });

  it('adds no HTML, link, image, heading or @mention of its own', () => {
    expectInert(hostile);
    expect(hostile).toContain(mdCode(HOSTILE_FILE, true));
  });

  it('names the fleet in the sticky marker without a way to end the comment early', () => {
    const marker = stickyMarker(MARKUP + ' --> --!> <!--');
    expect(marker.startsWith('<!-- upkeep-plan fleet=')).toBe(true);
    expect(marker.endsWith(' -->')).toBe(true);
    expect(marker.slice('<!--'.length, -' -->'.length)).not.toMatch(/[<>]/);
  });

  it('shows every path a mitigation writes on its host', () => {
    expect(benign).toContain('## Mitigations');
    expect(benign).toContain('`/etc/ssh/sshd_config.d/no-x11.conf`');
    expect(hostile).toContain(`\`${HOSTILE_DROP_IN}\``);
  });
});

describe('sections from hosts and the engine, which may say anything', () => {
  it('keeps a drifted path with a newline, a heading and a fold on its own line item', () => {
    const drift = renderDriftSection(new Map([['web1', [{ path: `/etc/x\n# Approved\n</details>\n@octocat`, fields: ['content'] as const }]]]) as never)!;
    expect(drift.split('\n').filter((l) => l.startsWith('- '))).toHaveLength(1);
    expect(drift).toContain('`/etc/x\\n# Approved\\n</details>\\n@octocat`');
    expectInert(drift);
  });

  it('keeps addresses the engine reports inert', () => {
    const text = renderInfraSection({ add: ['hcloud_server.a`b\n# x'], change: [], replace: [], destroy: ['hcloud_server.<img src=x>'] }, '`terraform show -json` of a saved plan');
    expect(text).toContain('``hcloud_server.a`b\\n# x``');
    expectInert(text);
  });
});

describe('the markdown helpers', () => {
  it('turn markup into character references and break mentions', () => {
    expect(mdText('a|b <i> @me [x](y) #1 *e* _u_ ~s~ & \\')).toBe('a&#124;b &#60;i&#62; @&#8203;me &#91;x&#93;&#40;y&#41; &#35;1 &#42;e&#42; &#95;u&#95; &#126;s&#126; &#38; &#92;');
    expect(mdText('line\nnext\u202e')).toBe('line&#92;nnext&#92;u202e');
  });

  it('fence code with more backticks than it holds, and escape | in tables', () => {
    expect(mdCode('/etc/a')).toBe('`/etc/a`');
    expect(mdCode('a``b')).toBe('```a``b```');
    expect(mdCode('`x')).toBe('`` `x ``');
    expect(mdCode('a|b', true)).toBe('`a\\|b`');
  });
});
