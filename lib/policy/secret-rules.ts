// Secrets go only where the policy's author could see them go. Checked at plan time, on the policy
// as written (so YAML errors point at the line):
// - a `{file}` reference names a file inside the project (relative to the policy file, no "..");
//   the applier also refuses one that leaves the project through a symlink (plan/secrets.ts);
// - a secret shipped to hosts (route tokens, backup and mailbox passwords) never reads the
//   applier's own credentials: the Hetzner token's variable, Terraform's variables, the state
//   backend's credentials, or upkeep's own UPKEEP_* settings;
// - a webhook that receives a token is https, so the token is not sent in the clear;
// - no URL carries credentials (user:password@, ?token=...): URLs are written to 0644 files and
//   passed to curl on its command line, where every local user can read them.

import { posix } from 'node:path';
import type { PolicyIssue, PolicyPath } from './errors.ts';
import { policyLayers } from './layering.ts';
import type { FleetSpec, SecretRef } from './model.ts';

/** The applier's credentials, by environment variable: never the source of a secret sent to hosts. */
const APPLIER_CREDENTIALS: readonly RegExp[] = [/^HCLOUD_TOKEN$/, /^TF_VAR_/, /^AWS_/, /^PG_CONN_STR$/, /^UPKEEP_/];

/** Query parameters that carry credentials by their name. */
const CREDENTIAL_PARAMETER = /token|secret|passw|pwd|api[-_]?key|^key$|^sig(nature)?$|^auth|credential|session/i;

const URL_CREDENTIALS_ADVICE =
  'it would be written to world-readable files and command lines; use a secret reference instead (for a webhook: the route\'s token field, sent as a bearer header from a 0600 file)';

interface Found {
  readonly path: PolicyPath;
  readonly ref: SecretRef;
}

function isSecretRef(value: unknown): value is SecretRef {
  return value !== null && typeof value === 'object' && (typeof (value as { env?: unknown }).env === 'string' || typeof (value as { file?: unknown }).file === 'string');
}

/** A secret file reference that stays inside the project, by its text alone. */
function secretFileInsideProject(file: string): boolean {
  const normal = posix.normalize(file.replace(/\\/g, '/'));
  return !posix.isAbsolute(normal) && !/^[A-Za-z]:/.test(normal) && normal !== '..' && !normal.startsWith('../');
}

/** Every URL credential problem of `url` (userinfo, credential-looking query parameters). */
function urlCredentials(url: string): string | undefined {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)([^?#]*)(\?[^#]*)?/i.exec(url);
  if (!m) return undefined;
  if (m[1].includes('@')) return `a URL must not carry a user or password (user:password@): ${URL_CREDENTIALS_ADVICE}`;
  const names = (m[3] ?? '').slice(1).split('&').map((pair) => decodeURIComponentSafe(pair.split('=')[0]));
  const named = names.find((name) => CREDENTIAL_PARAMETER.test(name));
  if (named !== undefined) return `a URL must not carry a credential in its query (${JSON.stringify(named)}): ${URL_CREDENTIALS_ADVICE}`;
  return undefined;
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The maintenance layers of the policy with their paths: defaults, each group, each host. */
/** Secret references that reach hosts, with their paths. */
function hostSecrets(spec: FleetSpec): Found[] {
  return policyLayers(spec).flatMap(({ path, policy }) => [
    ...(isSecretRef(policy.backups?.password) ? [{ path: [...path, 'backups', 'password'], ref: policy.backups.password }] : []),
    ...(isSecretRef(policy.monitoring?.heartbeat?.url) ? [{ path: [...path, 'monitoring', 'heartbeat', 'url'], ref: policy.monitoring.heartbeat.url }] : []),
    ...(policy.monitoring?.routes ?? []).flatMap((route, i) => (isSecretRef(route.token) ? [{ path: [...path, 'monitoring', 'routes', i, 'token'], ref: route.token }] : [])),
    ...(policy.monitoring?.routes ?? []).flatMap((route, i) =>
      isSecretRef(route.email?.password) ? [{ path: [...path, 'monitoring', 'routes', i, 'email', 'password'], ref: route.email.password }] : [],
    ),
    ...Object.entries(policy.monitoring?.checks ?? {}).flatMap(([name, check]) =>
      check && check.kind === 'mail-delivery' && isSecretRef(check.imapPassword) ? [{ path: [...path, 'monitoring', 'checks', name, 'imapPassword'], ref: check.imapPassword }] : [],
    ),
  ]);
}

/** Secret references the engine reads (the Hetzner token, a pg connection string). */
function engineSecrets(spec: FleetSpec): Found[] {
  const p = spec.provisioning;
  if (!p) return [];
  const backend = p.stateBackend;
  return [
    ...(isSecretRef(p.token) ? [{ path: ['provisioning', 'token'], ref: p.token }] : []),
    ...(backend && 'pg' in backend && isSecretRef(backend.pg.connStr) ? [{ path: ['provisioning', 'stateBackend', 'pg', 'connStr'], ref: backend.pg.connStr }] : []),
  ];
}

function sameRef(a: SecretRef, b: SecretRef): boolean {
  if ('env' in a && 'env' in b) return a.env === b.env;
  if ('file' in a && 'file' in b) return posix.normalize(a.file) === posix.normalize(b.file);
  return false;
}

/** Every problem with where the policy's secrets come from and where they go. */
export function secretIssues(spec: FleetSpec): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  const engine = engineSecrets(spec);
  const hosts = hostSecrets(spec);
  for (const { path, ref } of [...engine, ...hosts]) {
    if ('file' in ref && !secretFileInsideProject(ref.file)) {
      issues.push({ path: [...path, 'file'], message: `a secret file must be inside the project, given relative to the policy file's directory, got ${JSON.stringify(ref.file)}` });
    }
  }
  for (const { path, ref } of hosts) {
    const engineSecret = engine.find((e) => sameRef(e.ref, ref));
    if (engineSecret) {
      issues.push({ path, message: `this secret is sent to hosts and must not be the applier's own credential (the same reference as ${engineSecret.path.join('.')})` });
    } else if ('env' in ref && APPLIER_CREDENTIALS.some((name) => name.test(ref.env))) {
      issues.push({
        path: [...path, 'env'],
        message: `this secret is sent to hosts and must not be read from ${ref.env}: HCLOUD_TOKEN, TF_VAR_*, AWS_*, PG_CONN_STR and UPKEEP_* hold the applier's own credentials and settings; use a variable of its own`,
      });
    }
  }
  for (const { path, policy } of policyLayers(spec)) {
    (policy.monitoring?.routes ?? []).forEach((route, i) => {
      for (const field of ['webhook', 'alertmanager'] as const) {
        const url = route[field];
        if (typeof url !== 'string') continue;
        const at: PolicyPath = [...path, 'monitoring', 'routes', i, field];
        const credentials = urlCredentials(url);
        if (credentials) issues.push({ path: at, message: credentials });
        else if (route.token && !/^https:\/\//i.test(url)) issues.push({ path: at, message: `a${field === 'webhook' ? ' webhook' : 'n Alertmanager'} that receives a token must be an https:// URL, or the token travels in the clear` });
      }
    });
    for (const [name, check] of Object.entries(policy.monitoring?.checks ?? {})) {
      if (!check || check.kind !== 'http' || typeof check.url !== 'string') continue;
      const credentials = urlCredentials(check.url);
      if (credentials) issues.push({ path: [...path, 'monitoring', 'checks', name, 'url'], message: credentials });
    }
  }
  for (const { path, policy } of policyLayers(spec)) {
    const repository = policy.backups?.repository;
    if (!repository || !('url' in repository) || typeof repository.url !== 'string') continue;
    // "rest:https://user:password@host/": the URL after restic's backend prefix.
    const credentials = urlCredentials(repository.url.slice(repository.url.indexOf(':') + 1));
    if (credentials) issues.push({ path: [...path, 'backups', 'repository', 'url'], message: credentials });
  }
  const backend = spec.provisioning?.stateBackend;
  if (backend && 's3' in backend && typeof backend.s3.endpoint === 'string') {
    const credentials = urlCredentials(backend.s3.endpoint);
    if (credentials) issues.push({ path: ['provisioning', 'stateBackend', 's3', 'endpoint'], message: credentials });
  }
  return issues;
}
