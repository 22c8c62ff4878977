// Policies for the fuzz test (fuzz.test.ts): the real YAML policies (the YAML example, the small
// test fleet, the bad-input corpus) broken the ways hand edits, bad merges and hostile YAML-only
// contributors break them. A case is a recipe (a seed, edits to its data, edits to its text, stray
// bytes), so fast-check can shrink a failure to the few edits that cause it.

import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument, stringify, type ToStringOptions } from 'yaml';
import schema from '../../lib/policy/fleet.schema.json' with { type: 'json' };
import { smallFleet } from '../fixtures/small-fleet.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const BAD = 'test/fixtures/bad';

interface Seed {
  readonly name: string;
  readonly text: string;
}

const read = (file: string): Seed => ({ name: file, text: readFileSync(join(root, file), 'utf8') });

/** Policies that plan: most mutations of them fail somewhere past the parser. */
const VALID_SEEDS: readonly Seed[] = [read('examples/yaml/fleet.yaml'), { name: 'test/fixtures/small-fleet.ts (as YAML)', text: stringify(smallFleet()) }];
/** Policies with one mistake each. */
const BAD_SEEDS: readonly Seed[] = readdirSync(join(root, BAD)).filter((f) => f.endsWith('.yaml')).sort().map((f) => read(`${BAD}/${f}`));

// ---- values ----------------------------------------------------------------------------------

/** Every key the schema knows, so a mutation can put a real key in the wrong place. */
const SCHEMA_KEYS: readonly string[] = (() => {
  const keys = new Set<string>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        if (k === 'properties' && v && typeof v === 'object') Object.keys(v).forEach((p) => keys.add(p));
        walk(v);
      }
    }
  };
  walk(schema);
  return [...keys].sort();
})();

/** Strings that have broken parsers, shells, unit files and lookups before. */
const TRICKY_STRINGS: readonly string[] = [
  '', ' ', '-', '~', 'null', 'true', 'no', 'off', 'y', '0x1F', '0o17', '1e400', '-1', '.inf', '-.inf', '.nan',
  'constructor', '__proto__', 'prototype', 'toString', 'hasOwnProperty', 'valueOf',
  'staging', 'production', 'stage1', 'web1', 'web2', 'backup1', 'mon1', 'monitor', 'backup', 'web', 'mail',
  '192.0.2.11', '::1', '[::1]:22', 'localhost', '-oProxyCommand=reboot', '--help',
  '$(reboot)', '`reboot`', '; reboot', '| reboot', '&& reboot', "'", '"', '\\', '%n%s', '${HOME}',
  '\n', 'a\nb', '\r\n', '\t', '\u0000', '\u0085', '\u2028', '\u202e', '\ufeff', '\ud800', 'é', 'ß', 'İ', '🙂', 'Ω',
  '../../etc/shadow', '/etc/shadow', '/', '//', '/srv/ä', 'file:///etc/passwd', 'sftp:u@h:/p', 'https://x/', 'http://[::1]:0/',
  '0s', '0m', '1.5h', '15m', '24h', '7d', '2w', '99999999999999999999w', '00:00', '23:59', '24:00', '02:30',
  '2026-02-29', '2026-03-29', '9999-12-31', 'Europe/Berlin', 'America/Sao_Paulo', 'Australia/Lord_Howe', 'Etc/GMT+14', 'UTC', 'EST5EDT',
  'daily', 'Sun *-*-* 05:00:00', '*-*-* 99:99:99', 'Mon..Sun', 'ssh-ed25519 AAAA', 'ssh-rsa', '5%', '101%',
  'x'.repeat(300), 'y'.repeat(70_000),
];

/** The text values under each key name in the valid seeds (list items count under the list's key). */
const VALUES_BY_KEY: ReadonlyMap<string, readonly string[]> = (() => {
  const found = new Map<string, Set<string>>();
  const walk = (v: unknown, key: string): void => {
    if (typeof v === 'string') found.set(key, (found.get(key) ?? new Set()).add(v));
    else if (Array.isArray(v)) v.forEach((x) => walk(x, key));
    else if (v && typeof v === 'object') Object.entries(v).forEach(([k, x]) => walk(x, k));
  };
  for (const seed of VALID_SEEDS) walk(parseDocument(seed.text).toJS(), '');
  return new Map([...found].map(([k, values]) => [k, [...values].sort()]));
})();

/** Every text value of the valid seeds, and the tricky strings that the schema accepts somewhere. */
const PLAUSIBLE_STRINGS: readonly string[] = (() => {
  const found = new Set<string>(TRICKY_STRINGS.filter((t) => /^[\w./:%*@ -]+$/.test(t) && t.length < 100));
  const walk = (v: unknown): void => {
    if (typeof v === 'string') found.add(v);
    else if (v && typeof v === 'object') Object.entries(v).forEach(([k, x]) => (found.add(k), walk(x)));
  };
  for (const seed of VALID_SEEDS) walk(parseDocument(seed.text).toJS());
  return [...found].sort();
})();

/** "2h" -> "9a", "02:00" -> "9:9", "Europe/Berlin" -> "Aa/Aa": strings of one form fit one pattern. */
function formOf(text: string): string {
  return text.replace(/[0-9]+/g, '9').replace(/[a-z]+/g, 'a').replace(/[A-Z]+/g, 'A').replace(/(?:Aa|a)+/g, 'a');
}

const PROTOTYPE_NAMES: readonly string[] = Object.getOwnPropertyNames(Object.prototype).sort();

const PLAUSIBLE_NUMBERS: readonly number[] = [0, 1, 2, 3, 4, 5, 7, 10, 22, 30, 90, 100, 443, 1000, -1, 1.5, 65535, 65536, 1e26];

const trickyString = fc.constantFrom(...TRICKY_STRINGS);
const anyKey = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...SCHEMA_KEYS) }, { weight: 2, arbitrary: trickyString }, { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) });

const scalar: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: trickyString },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(0, -0, 1, -1, 2, 5, 1.5, 65535, 65536, 2 ** 31, 2 ** 53, Number.MAX_SAFE_INTEGER + 2, 1e21, 1e26, 1e308, -1e308, 5e-324, Infinity, -Infinity, NaN),
  },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) },
);

const { value: anyValue } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(anyKey, tie('value'), { maxKeys: 4 }),
  ),
}));

// ---- edits of the data ------------------------------------------------------------------------

type Path = readonly (string | number)[];

/** Data edits: `at` and `to` pick a node among all nodes of the document (modulo their count). */
type DataEdit =
  | { readonly kind: 'delete'; readonly at: number }
  | { readonly kind: 'tweak'; readonly at: number; readonly pick: number }
  | { readonly kind: 'replace'; readonly at: number; readonly value: unknown }
  | { readonly kind: 'retype'; readonly at: number; readonly to: 'text' | 'number' | 'boolean' | 'list' | 'mapping' | 'null' }
  | { readonly kind: 'rename'; readonly at: number; readonly name: string }
  | { readonly kind: 'add'; readonly at: number; readonly name: string; readonly value: unknown }
  | { readonly kind: 'share'; readonly at: number; readonly to: number }
  | { readonly kind: 'copy'; readonly at: number; readonly to: number };

const dataEdit: fc.Arbitrary<DataEdit> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }) },
  // A plausible value of the same type: past the schema, into resolve and validate.
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('tweak' as const), at: fc.nat(), pick: fc.nat() }) },
  fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), value: anyValue }),
  fc.record({ kind: fc.constant('retype' as const), at: fc.nat(), to: fc.constantFrom('text' as const, 'number' as const, 'boolean' as const, 'list' as const, 'mapping' as const, 'null' as const) }),
  fc.record({ kind: fc.constant('rename' as const), at: fc.nat(), name: anyKey }),
  fc.record({ kind: fc.constant('add' as const), at: fc.nat(), name: anyKey, value: anyValue }),
  // The same object in two places: YAML anchors and aliases, and a cycle when `to` is inside `at`.
  fc.record({ kind: fc.constant('share' as const), at: fc.nat(), to: fc.nat() }),
  fc.record({ kind: fc.constant('copy' as const), at: fc.nat(), to: fc.nat() }),
);

type Container = Record<string | number, unknown>;
const isContainer = (v: unknown): v is Container => v !== null && typeof v === 'object';

/** Paths of every node, the root first; a shared object is entered once, so cycles end. */
function pathsOf(value: unknown): Path[] {
  const out: Path[] = [];
  const seen = new Set<unknown>();
  const walk = (v: unknown, path: Path) => {
    out.push(path);
    if (!isContainer(v) || seen.has(v) || out.length > 5_000) return;
    seen.add(v);
    for (const k of Object.keys(v)) walk(v[k], [...path, Array.isArray(v) ? Number(k) : k]);
  };
  walk(value, []);
  return out;
}

function get(value: unknown, path: Path): unknown {
  return path.reduce<unknown>((v, k) => (isContainer(v) ? v[k] : undefined), value);
}

function retype(v: unknown, to: Extract<DataEdit, { kind: 'retype' }>['to']): unknown {
  switch (to) {
    case 'text':
      return isContainer(v) ? JSON.stringify(v) ?? '' : String(v);
    case 'number':
      return typeof v === 'string' ? Number(v.replace(/\D+/g, '') || v.length) : isContainer(v) ? Object.keys(v).length : Number(v);
    case 'boolean':
      return Boolean(v);
    case 'list':
      return isContainer(v) && !Array.isArray(v) ? Object.values(v) : [v];
    case 'mapping':
      return Array.isArray(v) ? Object.fromEntries(v.map((x, i) => [typeof x === 'string' ? x : String(i), x])) : { [String(v)]: v };
    case 'null':
      return null;
  }
}

/** `edit` applied to `doc` (a mutable copy); returns the new root (the root itself may be replaced). */
function applyDataEdit(doc: unknown, edit: DataEdit): unknown {
  const paths = pathsOf(doc);
  const path = paths[edit.at % paths.length];
  const set = (p: Path, v: unknown): unknown => {
    if (p.length === 0) return v;
    const parent = get(doc, p.slice(0, -1));
    if (isContainer(parent)) parent[p[p.length - 1]] = v;
    return doc;
  };
  const current = get(doc, path);
  switch (edit.kind) {
    case 'delete': {
      if (path.length === 0) return null;
      const parent = get(doc, path.slice(0, -1));
      const key = path[path.length - 1];
      if (Array.isArray(parent)) parent.splice(Number(key), 1);
      else if (isContainer(parent)) delete parent[key];
      return doc;
    }
    case 'tweak': {
      if (typeof current === 'string') {
        // Mostly what a seed has under the same key ("production" for a group), else a string of the
        // same form ("2h" for "30m"), which the schema's pattern likely accepts; sometimes anything,
        // or a name every JavaScript object has (a lookup by name must not find "constructor").
        const key = String([...path].reverse().find((p) => typeof p === 'string'));
        const sameKey = VALUES_BY_KEY.get(key) ?? [];
        const sameForm = PLAUSIBLE_STRINGS.filter((t) => formOf(t) === formOf(current));
        const pools = [sameKey, sameKey, sameForm, PLAUSIBLE_STRINGS, PROTOTYPE_NAMES].filter((p) => p.length > 0);
        const pool = pools[edit.pick % pools.length];
        return set(path, pool[Math.floor(edit.pick / pools.length) % pool.length]);
      }
      if (typeof current === 'number') return set(path, PLAUSIBLE_NUMBERS[edit.pick % PLAUSIBLE_NUMBERS.length]);
      if (typeof current === 'boolean') return set(path, !current);
      return doc;
    }
    case 'replace':
      return set(path, structuredClone(edit.value));
    case 'retype':
      return set(path, retype(current, edit.to));
    case 'rename': {
      if (path.length === 0) return doc;
      const parent = get(doc, path.slice(0, -1));
      if (!isContainer(parent) || Array.isArray(parent)) return doc;
      delete parent[path[path.length - 1]];
      parent[edit.name] = current;
      return doc;
    }
    case 'add': {
      const target = isContainer(current) && !Array.isArray(current) ? current : get(doc, path.slice(0, -1));
      if (Array.isArray(target)) target.push(structuredClone(edit.value));
      else if (isContainer(target)) target[edit.name] = structuredClone(edit.value);
      else return { [edit.name]: structuredClone(edit.value) };
      return doc;
    }
    case 'share':
    case 'copy': {
      const to = paths[edit.to % paths.length];
      return set(to, edit.kind === 'share' ? current : structuredClone(current));
    }
  }
}

const stringifyOptions: fc.Arbitrary<ToStringOptions> = fc.record(
  {
    collectionStyle: fc.constantFrom('any' as const, 'block' as const, 'flow' as const),
    defaultStringType: fc.constantFrom('PLAIN' as const, 'QUOTE_DOUBLE' as const, 'QUOTE_SINGLE' as const, 'BLOCK_LITERAL' as const, 'BLOCK_FOLDED' as const),
    indent: fc.constantFrom(1, 2, 4, 8),
    indentSeq: fc.boolean(),
    lineWidth: fc.constantFrom(0, 20, 80),
  },
  { requiredKeys: [] },
);

// ---- edits of the text ------------------------------------------------------------------------

/** Bits of YAML syntax, tags included (yaml's own 1.1 tags make Buffers, Sets, Maps and Dates). */
const FRAGMENTS: readonly string[] = [
  ': ', ':', '- ', '? ', ', ', '&a ', '*a', '*missing', '<<: *a\n', '<<: [*a, *a]\n', '<<: 1\n', '&a [*a]', '&b {x: *b}',
  '!!binary aGVsbG8=', '!!set {x, y}', '!!omap [x: 1]', '!!pairs [x: 1]', '!!timestamp 2001-12-14', '!!int ', '!!float ', '!!str ', '!!map ', '!!seq ', '!!null ',
  '!!python/object/apply:os.system ["reboot"]', '!<tag:yaml.org,2002:js/function> "function(){}"', '!local ',
  '%YAML 1.1\n---\n', '%TAG ! tag:x,2000:\n---\n', '---\n', '...\n', '\n---\nsecond: document\n',
  '{', '}', '[', ']', '"', "'", '|', '|-\n', '>', '#', '\t', '\n', '\n  ', '    ', '\r', '\u0000', '\ufeff', '\u2028',
];

type TextEdit =
  | { readonly kind: 'truncate'; readonly at: number }
  | { readonly kind: 'insert'; readonly at: number; readonly text: string }
  | { readonly kind: 'cut'; readonly at: number; readonly length: number }
  | { readonly kind: 'duplicate-line'; readonly at: number }
  | { readonly kind: 'delete-line'; readonly at: number }
  | { readonly kind: 'move-line'; readonly at: number; readonly to: number }
  | { readonly kind: 'set-value'; readonly at: number; readonly text: string }
  | { readonly kind: 'anchor'; readonly at: number; readonly to: number; readonly merge: boolean }
  | { readonly kind: 'tab-indent'; readonly at: number }
  | { readonly kind: 'crlf' }
  | { readonly kind: 'alias-bomb'; readonly width: number; readonly depth: number };

const scalarText = fc.oneof(
  trickyString.map((s) => (/^[\w./:-]*$/.test(s) ? s : JSON.stringify(s))),
  scalar.map((v) => stringify(v, { lineWidth: 0 }).trimEnd()),
  fc.constantFrom(...FRAGMENTS),
);

const textEdit: fc.Arbitrary<TextEdit> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.constantFrom(...FRAGMENTS), fc.string({ unit: 'grapheme', maxLength: 8 }), scalarText) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 200 }) }),
  fc.record({ kind: fc.constant('duplicate-line' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('delete-line' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('move-line' as const), at: fc.nat(), to: fc.nat() }),
  fc.record({ kind: fc.constant('set-value' as const), at: fc.nat(), text: scalarText }),
  fc.record({ kind: fc.constant('anchor' as const), at: fc.nat(), to: fc.nat(), merge: fc.boolean() }),
  fc.record({ kind: fc.constant('tab-indent' as const), at: fc.nat() }),
  fc.constant({ kind: 'crlf' as const }),
  fc.record({ kind: fc.constant('alias-bomb' as const), width: fc.integer({ min: 2, max: 12 }), depth: fc.integer({ min: 1, max: 9 }) }),
);

/** Lines that hold a key ("  name: value" or "  name:"), as [line index, offset after the colon]. */
function keyLines(lines: readonly string[]): [number, number][] {
  const out: [number, number][] = [];
  lines.forEach((line, i) => {
    const m = /^(\s*(?:- )?[\w.-]+:)(?: |$)/.exec(line);
    if (m) out.push([i, m[1].length]);
  });
  return out;
}

function aliasBomb(width: number, depth: number): string {
  const lines = [`lol0: &lol0 [${Array(width).fill('lol').join(', ')}]`];
  for (let d = 1; d <= depth; d++) lines.push(`lol${d}: &lol${d} [${Array(width).fill(`*lol${d - 1}`).join(', ')}]`);
  return `${lines.join('\n')}\n`;
}

function applyTextEdit(text: string, edit: TextEdit): string {
  const lines = text.split('\n');
  const at = (n: number, length: number) => (length === 0 ? 0 : n % length);
  switch (edit.kind) {
    case 'truncate':
      return text.slice(0, at(edit.at, text.length + 1));
    case 'insert': {
      const i = at(edit.at, text.length + 1);
      return text.slice(0, i) + edit.text + text.slice(i);
    }
    case 'cut': {
      const i = at(edit.at, text.length + 1);
      return text.slice(0, i) + text.slice(i + edit.length);
    }
    case 'duplicate-line': {
      // A repeated key line makes a duplicate key where it stays inside its mapping.
      const i = at(edit.at, lines.length);
      lines.splice(i, 0, lines[i]);
      return lines.join('\n');
    }
    case 'delete-line':
      lines.splice(at(edit.at, lines.length), 1);
      return lines.join('\n');
    case 'move-line': {
      const [line] = lines.splice(at(edit.at, lines.length), 1);
      lines.splice(at(edit.to, lines.length + 1), 0, line);
      return lines.join('\n');
    }
    case 'set-value': {
      const keys = keyLines(lines);
      if (keys.length === 0) return text;
      const [i, end] = keys[at(edit.at, keys.length)];
      lines[i] = `${lines[i].slice(0, end)} ${edit.text}`;
      return lines.join('\n');
    }
    case 'anchor': {
      // An anchor on one key's value and an alias (or a merge) of it at another: aliases before
      // their anchor, aliases inside their own anchor, merges of scalars and lists.
      const keys = keyLines(lines);
      if (keys.length === 0) return text;
      const [i, end] = keys[at(edit.at, keys.length)];
      const [j, endJ] = keys[at(edit.to, keys.length)];
      lines[i] = `${lines[i].slice(0, end)} &fz${lines[i].slice(end)}`;
      if (edit.merge) {
        const indent = /^\s*(?:- )?/.exec(lines[j])![0].replace('-', ' ');
        lines.splice(j + 1, 0, `${indent}  <<: *fz`);
      } else {
        lines[j] = `${lines[j].slice(0, endJ)} *fz`;
      }
      return lines.join('\n');
    }
    case 'tab-indent': {
      const i = at(edit.at, lines.length);
      lines[i] = lines[i].replace(/^ +/, '\t');
      return lines.join('\n');
    }
    case 'crlf':
      return text.replace(/\n/g, '\r\n');
    case 'alias-bomb':
      return aliasBomb(edit.width, edit.depth) + text;
  }
}

// ---- cases ------------------------------------------------------------------------------------

/** Raw bytes written over the encoded text: invalid UTF-8, NULs, stray control characters. */
interface ByteEdit {
  readonly at: number;
  readonly bytes: Uint8Array;
}

type Recipe =
  | { readonly from: 'seed'; readonly seed: Seed; readonly data: readonly DataEdit[]; readonly style: ToStringOptions | undefined; readonly text: readonly TextEdit[]; readonly bytes: readonly ByteEdit[] }
  | { readonly from: 'random data'; readonly value: unknown; readonly style: ToStringOptions }
  | { readonly from: 'random bytes'; readonly bytes: Uint8Array };

export interface FuzzCase {
  /** The policy file's name: .yaml or .yml. */
  readonly file: string;
  readonly content: Uint8Array;
  /** How the case was made, for the failure report. */
  readonly recipe: string;
}

/** JSON with long strings shortened, so a failure report stays readable. */
function brief(value: unknown): string {
  return JSON.stringify(value, (_, v: unknown) => (typeof v === 'string' && v.length > 60 ? `${v.slice(0, 40)}...(${v.length} characters)` : v)) ?? String(value);
}

function describeRecipe(r: Recipe): string {
  switch (r.from) {
    case 'seed':
      return [
        `from ${r.seed.name}`,
        ...r.data.map((e) => `data: ${brief(e)}`),
        ...(r.style ? [`written with ${JSON.stringify(r.style)}`] : []),
        ...r.text.map((e) => `text: ${brief(e)}`),
        ...r.bytes.map((e) => `bytes at ${e.at}: ${Buffer.from(e.bytes).toString('hex')}`),
      ].join('\n  ');
    case 'random data':
      return `random data written as YAML with ${JSON.stringify(r.style)}`;
    case 'random bytes':
      return `${r.bytes.length} random bytes`;
  }
}

/** The data of a YAML text, or undefined when it does not parse cleanly (then only its text is edited). */
function dataOf(text: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: false, merge: true });
  if (doc.errors.length > 0) return undefined;
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch {
    return undefined;
  }
}

function write(value: unknown, style: ToStringOptions | undefined): string | undefined {
  try {
    return stringify(value, style);
  } catch {
    // Some styles cannot write some values (e.g. a block scalar as a key); the plain style can.
    try {
      return stringify(value);
    } catch {
      return undefined;
    }
  }
}

function build(r: Recipe): Uint8Array {
  switch (r.from) {
    case 'random bytes':
      return r.bytes;
    case 'random data':
      return Buffer.from(write(r.value, r.style) ?? '', 'utf8');
    case 'seed': {
      let text = r.seed.text;
      const data = r.data.length > 0 || r.style ? dataOf(text) : undefined;
      if (data !== undefined) text = write(r.data.reduce(applyDataEdit, structuredClone(data)), r.style) ?? text;
      text = r.text.reduce(applyTextEdit, text);
      const bytes = Buffer.from(text, 'utf8');
      for (const e of r.bytes) bytes.set(e.bytes.subarray(0, Math.max(0, bytes.length - (e.at % (bytes.length + 1)))), e.at % (bytes.length + 1));
      return bytes;
    }
  }
}

/** `edits` with the given odds against none at all. */
function sometimes<T>(odds: number, edits: fc.Arbitrary<readonly T[]>): fc.Arbitrary<readonly T[]> {
  return fc.oneof({ weight: 12, arbitrary: fc.constant([]) }, { weight: Math.round(12 * odds), arbitrary: edits });
}

const seedRecipe: fc.Arbitrary<Recipe> = fc.record({
  from: fc.constant('seed' as const),
  seed: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...VALID_SEEDS) }, { weight: 1, arbitrary: fc.constantFrom(...BAD_SEEDS) }),
  // Most cases keep the text parseable, so that the schema, resolve and validate see them.
  data: sometimes(4, fc.array(dataEdit, { minLength: 1, maxLength: 3 })),
  style: fc.option(stringifyOptions, { nil: undefined, freq: 3 }),
  text: sometimes(1 / 2, fc.array(textEdit, { minLength: 1, maxLength: 3 })),
  bytes: sometimes(1 / 8, fc.array(fc.record({ at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }) }), { minLength: 1, maxLength: 2 })),
});

/** One policy file to feed to the loader: mostly a mutated real policy, sometimes noise. */
export const fuzzCase: fc.Arbitrary<FuzzCase> = fc
  .tuple(
    fc.oneof(
      { weight: 16, arbitrary: seedRecipe },
      { weight: 1, arbitrary: fc.record({ from: fc.constant('random data' as const), value: anyValue, style: stringifyOptions }) },
      { weight: 1, arbitrary: fc.record({ from: fc.constant('random bytes' as const), bytes: fc.uint8Array({ maxLength: 300 }) }) },
    ),
    fc.constantFrom('policy.yaml', 'policy.yml'),
  )
  .map(([recipe, file]) => {
    const c: FuzzCase = { file, content: build(recipe), recipe: describeRecipe(recipe) };
    // fast-check prints a failing case with this: the recipe and the start of the file.
    return Object.assign(c, {
      [fc.toStringMethod]: () => `${file}, ${c.content.length} bytes:\n  ${c.recipe}\n--- start of the file ---\n${Buffer.from(c.content.subarray(0, 1500)).toString('utf8')}\n---`,
    });
  });
