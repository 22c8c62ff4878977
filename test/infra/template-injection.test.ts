// A policy value is text in the stack, never a Terraform expression: an operator key comment (or
// any other string of the policy) that holds "${file(...)}" or a "%{...}" directive must reach
// main.tf.json escaped, so the engine renders the literal text instead of evaluating it on the
// machine that applies. Where terraform is installed, it proves the rendering itself (offline: a
// configuration without providers).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { STACK_FILE, synthesizeInfra } from '../../lib/compile/infra.ts';
import { whichProgram } from '../programs.ts';
import { OPERATOR_KEYS, generationsOf, infraFleet } from '../fixtures/infra-fleet.ts';

const KEY_BODY = OPERATOR_KEYS[0].split(' ').slice(0, 2).join(' ');
const HOSTILE_COMMENTS = ['${file("/etc/passwd")}', '%{ if true }x%{ endif }', 'mallory ${var.hcloud_token} $${kept} %%{ kept }'];

function hostileStack() {
  const fleet = infraFleet((spec) => {
    spec.provisioning.operatorKeys = HOSTILE_COMMENTS.map((comment) => `${KEY_BODY.replace('Fq1', `Fq${HOSTILE_COMMENTS.indexOf(comment)}`)} ${comment}`);
    spec.provisioning.stateBackend = { s3: { bucket: '${file("/root/.aws/credentials")}', key: 'state/%{ for x in [1] }${x}%{ endfor }', region: 'eu-central' } };
  });
  const stack = JSON.parse(synthesizeInfra(fleet, generationsOf(fleet))![STACK_FILE]) as {
    resource: Record<string, Record<string, Record<string, unknown>>>;
    terraform: { backend: { s3: Record<string, string> } };
  };
  const keys = Object.values(stack.resource.hcloud_ssh_key).map((k) => k.public_key as string);
  return { stack, keys };
}

/** What Terraform makes of a string of a .tf.json file, the way the template parser reads it. */
function rendered(escaped: string): string {
  return escaped.replace(/\$\$\{/g, '${').replace(/%%\{/g, '%{');
}

describe('a policy string with Terraform template syntax', () => {
  const { stack, keys } = hostileStack();

  it('is escaped in hcloud_ssh_key.public_key, so it renders as the literal comment', () => {
    expect(keys.map((k) => k.slice(KEY_BODY.length + 1)).sort()).toEqual(['$${file("/etc/passwd")}', '%%{ if true }x%%{ endif }', 'mallory $${var.hcloud_token} $$${kept} %%%{ kept }'].sort());
    expect(keys.map((k) => rendered(k.slice(KEY_BODY.length + 1))).sort()).toEqual([...HOSTILE_COMMENTS].sort());
  });

  it('is escaped wherever else the policy reaches the stack (here the state backend)', () => {
    expect(stack.terraform.backend.s3.bucket).toBe('$${file("/root/.aws/credentials")}');
    expect(stack.terraform.backend.s3.key).toBe('state/%%{ for x in [1] }$${x}%%{ endfor }');
  });

  it('leaves the stack\'s own references as expressions', () => {
    const server = stack.resource.hcloud_server.web1;
    expect(server.ssh_keys).toEqual(expect.arrayContaining([expect.stringMatching(/^\$\{hcloud_ssh_key\.operator-[0-9a-f]{12}\.id\}$/)]));
    expect(server.placement_group_id).toMatch(/^\$\{hcloud_placement_group\.[\w-]+\.id\}$/);
  });

  const terraform = whichProgram('terraform');
  if (!terraform) console.warn('!!! SKIPPING the terraform rendering of escaped policy strings: terraform is not on PATH (optional; the escaping itself is tested above)');
  it.skipIf(!terraform)('renders as the literal text in terraform itself (a configuration without providers)', { timeout: 60_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'upkeep-tf-literal-'));
    try {
      const outputs = Object.fromEntries(keys.map((value, i) => [`key${i}`, { value }]));
      writeFileSync(join(dir, 'main.tf.json'), JSON.stringify({ output: outputs }));
      const env = { ...process.env, CHECKPOINT_DISABLE: '1', TF_IN_AUTOMATION: '1', TF_INPUT: '0' };
      execFileSync(terraform!, ['init', '-input=false', '-no-color'], { cwd: dir, env, stdio: 'pipe' });
      execFileSync(terraform!, ['apply', '-auto-approve', '-input=false', '-no-color'], { cwd: dir, env, stdio: 'pipe' });
      const values = JSON.parse(execFileSync(terraform!, ['output', '-json'], { cwd: dir, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })) as Record<string, { value: string }>;
      const comments = Object.values(values).map((o) => o.value.slice(KEY_BODY.length + 1));
      expect(comments.sort()).toEqual([...HOSTILE_COMMENTS].sort());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
