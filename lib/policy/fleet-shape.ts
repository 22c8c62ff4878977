// The shape of a fleet, checked against the published JSON Schema (the same file editors use), for
// YAML and TypeScript policies alike. ajv's errors are rewritten into messages an operator can act
// on: one message per mistake, with the policy path, the expected form and the value found.

import { Ajv, type ErrorObject } from 'ajv';
import schema from './fleet.schema.json' with { type: 'json' };
import { didYouMean } from './did-you-mean.ts';
import { PolicyError, type PolicyIssue, type PolicyPath, type PolicySource } from './errors.ts';

type SchemaNode = { readonly [key: string]: unknown };

// Refs stay functions of their own (not inlined): compiling takes half the time, which every bin/plan run pays.
const ajv = new Ajv({ allErrors: true, discriminator: true, verbose: true, inlineRefs: false });
const validate = ajv.compile(schema);
const definitions = schema.definitions as unknown as Record<string, SchemaNode>;

/** What a value of each named schema definition looks like, in words. */
const EXPECTED: Record<string, string> = {
  Duration: 'a duration such as 15m, 24h or 7d',
  TimeOfDay: 'a time of day "HH:MM" (00:00 to 23:59)',
  Date: 'a date "YYYY-MM-DD"',
  TimeZone: 'an IANA time zone such as Europe/Berlin',
  Calendar: 'a systemd calendar expression such as "daily" or "Sun *-*-* 05:00:00"',
  HostName: 'a host name of lower-case letters, digits and "-"',
  GroupName: 'a group name of lower-case letters, digits and "-"',
  Name: 'a name of lower-case letters, digits and "-"',
  AbsolutePath: 'an absolute path of letters, digits and ._-/+@%=:,~ (no spaces or shell characters)',
  ExcludePattern: 'an exclude pattern on a single line',
  Package: 'a package name',
  UnitName: 'a systemd unit name such as "cups.service"',
  Endpoint: 'a host name or IP address, optionally with ":port"',
  SmtpUrl: 'smtp://HOST[:PORT] (STARTTLS required) or smtps://HOST[:PORT]: the probe never goes out without TLS',
  ImapUrl: 'imaps://HOST[:PORT] or imap://HOST[:PORT] (STARTTLS required): the IMAP password is only sent over TLS',
  Address: 'a host name or IP address',
  DnsName: 'a DNS name',
  HttpUrl: 'an http:// or https:// URL without spaces or shell characters',
  PublicKey: 'an ssh public key such as "ssh-ed25519 AAAA..."',
  Cidr: 'a network such as 203.0.113.0/24',
  Reason: 'a written reason for the exemption',
  Port: 'a port number from 1 to 65535',
  Percent: 'a percentage such as 5%',
  SecretRef: 'a secret reference: {env: NAME} or {file: PATH}',
  Check: 'a check (a mapping with "kind") or false to remove an inherited check',
};

const TYPE_WORDS: Record<string, string> = {
  string: 'text',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
};

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return JSON.stringify(value);
}

const definitionNames = new Map<unknown, string>(Object.entries(definitions).map(([name, def]) => [def, name]));

/** The schema definition the failing keyword belongs to, e.g. "Duration" for a bad duration's pattern. */
function definitionOf(e: ErrorObject): string | undefined {
  return definitionNames.get(e.parentSchema);
}

function expected(e: ErrorObject): string {
  const def = definitionOf(e);
  if (def && EXPECTED[def]) return EXPECTED[def];
  const type = (e.parentSchema as SchemaNode | undefined)?.type;
  return typeof type === 'string' ? TYPE_WORDS[type] : 'a different value';
}

function pathOf(e: ErrorObject, ...more: (string | number)[]): PolicyPath {
  const segments = e.instancePath === '' ? [] : e.instancePath.slice(1).split('/');
  const path = segments.map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')).map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  return [...path, ...more];
}

/** '"a", "b" or 3' */
function oneOfWords(words: readonly unknown[]): string {
  const quoted = words.map((w) => JSON.stringify(w));
  return quoted.length < 2 ? quoted.join('') : `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}`;
}

/** The keys of a "keyed union" (`oneOf` of bare `required` branches), e.g. ["env", "file"]. */
function unionKeys(oneOf: unknown): string[] | undefined {
  if (!Array.isArray(oneOf)) return undefined;
  const keys = oneOf.map((branch: SchemaNode) => (Object.keys(branch).length === 1 && Array.isArray(branch.required) && branch.required.length === 1 ? String(branch.required[0]) : undefined));
  return keys.every((k): k is string => k !== undefined) ? keys : undefined;
}

/** The tag values a discriminated union accepts, e.g. the check kinds. */
function tagValues(parent: SchemaNode, tag: string): string[] {
  return (parent.oneOf as { $ref: string }[]).map((branch) => {
    const def = definitions[branch.$ref.replace('#/definitions/', '')] as { properties: Record<string, { const: string }> };
    return def.properties[tag].const;
  });
}

function issueFor(e: ErrorObject): PolicyIssue | undefined {
  const parent = (e.parentSchema ?? {}) as SchemaNode;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(e.params.additionalProperty);
      const known = Object.keys((parent.properties as object | undefined) ?? {});
      const hint = didYouMean(key, known) || (known.length > 0 ? ` (expected one of ${oneOfWords(known)})` : '');
      return { path: pathOf(e, key), message: `unknown key ${JSON.stringify(key)}${hint}` };
    }
    case 'required':
      return { path: pathOf(e), message: `missing required key ${JSON.stringify(e.params.missingProperty)}` };
    case 'dependencies':
      return {
        path: pathOf(e, String(e.params.property)),
        message: `${JSON.stringify(e.params.property)} only applies together with ${JSON.stringify(e.params.missingProperty)}`,
      };
    case 'discriminator': {
      const tag = String(e.params.tag);
      const values = tagValues(parent, tag);
      if (e.params.error === 'mapping') {
        const got = String(e.params.tagValue);
        return { path: pathOf(e, tag), message: `unknown ${tag} ${JSON.stringify(got)}${didYouMean(got, values) || `; expected one of ${oneOfWords(values)}`}` };
      }
      return { path: pathOf(e, tag), message: `expected ${tag} to be one of ${oneOfWords(values)}, got ${describe((e.data as SchemaNode)[tag])}` };
    }
    case 'oneOf': {
      const keys = unionKeys(e.schema);
      if (!keys) return { path: pathOf(e), message: `expected ${expected(e)}` };
      const passing = e.params.passingSchemas as number[] | null;
      return passing
        ? { path: pathOf(e), message: `give only one of ${oneOfWords(passing.map((i) => keys[i]))}, not several` }
        : { path: pathOf(e), message: `expected one of ${oneOfWords(keys)}` };
    }
    case 'enum': {
      const values = e.schema as unknown[];
      const hint = typeof e.data === 'string' ? didYouMean(e.data, values.map(String)) : '';
      return { path: pathOf(e), message: `expected one of ${oneOfWords(values)}, got ${describe(e.data)}${hint}` };
    }
    case 'const':
      return { path: pathOf(e), message: `expected ${JSON.stringify(e.schema)}, got ${describe(e.data)}` };
    case 'type':
    case 'pattern':
    case 'minLength':
      return { path: pathOf(e), message: `expected ${expected(e)}, got ${describe(e.data)}` };
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum': {
      const def = definitionOf(e);
      const bound = { minimum: 'at least', maximum: 'at most', exclusiveMinimum: 'more than', exclusiveMaximum: 'less than' }[e.keyword];
      const what = def && EXPECTED[def] ? EXPECTED[def] : `${expected(e)} of ${bound} ${String(e.schema)}`;
      return { path: pathOf(e), message: `expected ${what}, got ${describe(e.data)}` };
    }
    case 'minItems':
      return { path: pathOf(e), message: `expected a list of at least ${String(e.schema)} item${e.schema === 1 ? '' : 's'}, got ${(e.data as unknown[]).length}` };
    case 'uniqueItems': {
      const data = e.data as unknown[];
      return { path: pathOf(e, Number(e.params.i)), message: `${describe(data[Number(e.params.i)])} is listed twice` };
    }
    case 'propertyNames': {
      // Names of groups, hosts and checks: the name is the problem, not its value.
      const name = String(e.params.propertyName);
      const def = String((e.schema as SchemaNode).$ref).replace('#/definitions/', '');
      return { path: pathOf(e, name), message: `${JSON.stringify(name)} is not a valid name: expected ${EXPECTED[def] ?? EXPECTED.Name}` };
    }
    case 'if':
      // The failing then/else branch reports its own errors.
      return undefined;
    default:
      return { path: pathOf(e), message: e.message ?? 'is not valid' };
  }
}

/** The path at which `value` contains itself, if it does (YAML lets an alias refer to its own anchor). */
function cycleIn(value: unknown, path: PolicyPath = [], open = new Set<unknown>()): PolicyPath | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  if (open.has(value)) return path;
  open.add(value);
  for (const [key, child] of Object.entries(value)) {
    const found = cycleIn(child, [...path, Array.isArray(value) ? Number(key) : key], open);
    if (found) return found;
  }
  open.delete(value);
  return undefined;
}

/** Paths of every mapping key in `value` named one of `names`. */
function pathsOfKeys(value: unknown, names: readonly string[], path: PolicyPath = []): PolicyPath[] {
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, child]) => {
    const at = [...path, Array.isArray(value) ? Number(key) : key];
    return [...(!Array.isArray(value) && names.includes(key) ? [at] : []), ...pathsOfKeys(child, names, at)];
  });
}

/** Every shape problem of `spec` (unknown keys, wrong types, malformed values), one issue per mistake. */
export function fleetShapeIssues(spec: unknown): PolicyIssue[] {
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    return [{ path: [], message: `expected a fleet (a mapping with name, groups and hosts), got ${describe(spec)}` }];
  }
  // A TypeScript fleet may carry `undefined` for omitted options; JSON has no such value.
  let data: unknown;
  try {
    data = JSON.parse(JSON.stringify(spec));
  } catch (error) {
    const cycle = cycleIn(spec);
    if (cycle) return [{ path: cycle, message: 'refers back to a value that contains it (a YAML alias inside its own anchor): a policy is a tree of values' }];
    return [{ path: [], message: `cannot be read as data: ${error instanceof Error ? error.message : String(error)}` }];
  }
  try {
    if (validate(data)) return [];
  } catch (error) {
    // ajv compares list items (uniqueItems) with fast-deep-equal, which calls an object's own
    // toString or valueOf: a mapping with such a key (no policy mapping has one) makes it throw.
    const odd = pathsOfKeys(data, ['toString', 'valueOf']);
    if (odd.length > 0) return odd.map((path) => ({ path, message: `unknown key ${JSON.stringify(path.at(-1))}` }));
    return [{ path: [], message: `cannot be checked: ${error instanceof Error ? error.message : String(error)}` }];
  }
  const errors = validate.errors ?? [];
  // Errors by the value they are about, so related errors are found without comparing all pairs.
  const byValue = new Map<string, ErrorObject[]>();
  for (const e of errors) {
    const list = byValue.get(e.instancePath) ?? [];
    list.push(e);
    byValue.set(e.instancePath, list);
  }
  const near = (e: ErrorObject, keyword: string) => (byValue.get(e.instancePath) ?? []).filter((other) => other.keyword === keyword);
  // A keyed union (`oneOf` of `required` branches) reports its missing keys once, as one issue.
  const unionBranch = (e: ErrorObject) =>
    e.keyword === 'required' && near(e, 'oneOf').some((u) => unionKeys(u.schema) && e.schemaPath.startsWith(`${u.schemaPath}/`));
  // An unknown key in a keyed union already lists the keys it accepts.
  const misspeltUnion = (e: ErrorObject) =>
    e.keyword === 'oneOf' && unionKeys(e.schema) && !e.params.passingSchemas && near(e, 'additionalProperties').length > 0;
  // The name schema's own error repeats the propertyNames error above it (its data is the name).
  const nameDetail = (e: ErrorObject) => typeof e.data === 'string' && near(e, 'propertyNames').some((p) => p.params.propertyName === e.data);
  const issues: PolicyIssue[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (unionBranch(e) || misspeltUnion(e) || nameDetail(e)) continue;
    const issue = issueFor(e);
    if (!issue) continue;
    const key = `${issue.path.join('\u0000')}\u0001${issue.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    issues.push(issue);
  }
  return issues;
}

/**
 * Throws a PolicyError with every shape problem of `spec`, located in `source` when given and
 * then listed in the order they appear in the file.
 */
export function checkFleetShape(spec: unknown, source?: PolicySource): void {
  const issues = fleetShapeIssues(spec);
  if (issues.length === 0) return;
  const position = new Map<PolicyIssue, number>();
  for (const issue of issues) {
    const at = source?.locate(issue.path);
    position.set(issue, at ? at.line * 1e6 + at.column : Number.MAX_SAFE_INTEGER);
  }
  throw new PolicyError([...issues].sort((a, b) => position.get(a)! - position.get(b)!), source);
}
