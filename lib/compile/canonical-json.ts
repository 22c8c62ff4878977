// JSON with object keys sorted at every level, so equal data always gives equal bytes.
//
// The text is defined as JSON.stringify(value, replacer, indent) with a replacer that rebuilds
// every non-array object from its entries sorted by key (test/compile/canonical-json.test.ts
// compares against exactly that). A replacer is called back for every value of the document,
// which made it half the cost of hashing and writing a large fleet's plan: a document of plain
// objects and arrays, as every plan is, is copied with its keys sorted and serialized natively,
// and one whose keys are in order already (the plan's own objects are built so) is not even copied.

export function canonicalJson(value: unknown, indent?: number): string {
  if (inCanonicalOrder(value)) return JSON.stringify(value, null, indent);
  let sorted: unknown;
  try {
    sorted = sortedCopy(value);
  } catch (error) {
    if (error !== NOT_PLAIN) throw error;
    return JSON.stringify(value, (_key, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => byCodeUnits(a, b))) : v), indent);
  }
  return JSON.stringify(sorted, null, indent);
}

/** Thrown by sortedCopy for what it cannot copy faithfully: what JSON.stringify does not serialize by its own keys (a Date, a Map, anything with toJSON), and a "__proto__" key. */
const NOT_PLAIN = Symbol('not plain');

/** `value` with every object's keys inserted in sorted order (integer keys come first by themselves, as in the replacer's copies). */
function sortedCopy(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') throw NOT_PLAIN;
  if (Array.isArray(value)) {
    const copy: unknown[] = new Array(value.length);
    for (let i = 0; i < value.length; i++) copy[i] = sortedCopy(value[i]);
    return copy;
  }
  if (!isPlain(value)) throw NOT_PLAIN;
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort(byCodeUnits)) {
    // An own "__proto__" key (JSON.parse makes one) would set the copy's prototype instead.
    if (key === '__proto__') throw NOT_PLAIN;
    copy[key] = sortedCopy((value as Record<string, unknown>)[key]);
  }
  return copy;
}

/**
 * Whether JSON.stringify(value) already is the canonical text: plain objects and arrays only (no
 * toJSON), every object's keys in sorted order. Array-index keys ("7") come first in numeric order
 * in any object, as in the replacer's copies, so only the other keys are compared. An own
 * "__proto__" key is serialized as the replacer's copy has it. Walks without copying.
 */
function inCanonicalOrder(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return true;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!inCanonicalOrder(value[i])) return false;
    return true;
  }
  if (!isPlain(value)) return false;
  let previous: string | undefined;
  for (const key of Object.keys(value)) {
    if (!isIndexKey(key)) {
      if (previous !== undefined && !(previous < key)) return false;
      previous = key;
    }
    if (!inCanonicalOrder((value as Record<string, unknown>)[key])) return false;
  }
  return true;
}

const byCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * A copy of the flat record `record` with its keys in the order canonicalJson writes them, for
 * builders of documents that canonicalJson then serializes without a sorted copy of its own.
 */
export function inKeyOrder<T extends object>(record: T): T {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => byCodeUnits(a, b))) as T;
}
const ARRAY_INDEX = /^(?:0|[1-9][0-9]*)$/;
/** An array-index key, which every object lists first, in numeric order (a digit first: most keys are not). */
const isIndexKey = (key: string) => key.charCodeAt(0) <= 57 && ARRAY_INDEX.test(key) && Number(key) < 4294967295;

/**
 * An object's keys in the order canonicalJson writes them: the replacer rebuilds each object from
 * its sorted entries, and an object lists array-index keys ("7", "10") first, in numeric order.
 */
function sortedKeys(value: object): string[] {
  const indices: string[] = [];
  const names: string[] = [];
  for (const key of Object.keys(value)) (isIndexKey(key) ? indices : names).push(key);
  indices.sort((a, b) => Number(a) - Number(b));
  return [...indices, ...names.sort(byCodeUnits)];
}

const isPlain = (v: object) => Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null;

/**
 * canonicalJson(value, indent) in pieces whose concatenation is exactly that text: the objects and
 * arrays of the first `depth` levels are taken apart, everything below them serialized whole. A
 * plan of 10,000 hosts is hundreds of megabytes as one string; in pieces (depth 2: one per host)
 * it can be written or hashed without ever being whole in memory.
 */
export function* canonicalJsonChunks(value: unknown, indent: number | undefined, depth: number): Generator<string> {
  const gap = indent === undefined ? '' : ' '.repeat(Math.max(0, Math.min(10, Math.floor(indent))));
  yield* chunks(value, gap, '', depth);
}

const splits = (value: unknown, depth: number): value is object =>
  depth > 0 && value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON !== 'function' && (Array.isArray(value) || isPlain(value));

/** canonicalJson of a value below the top: its own line breaks need this level's indentation (a JSON string holds no raw line break). */
function whole(value: unknown, gap: string, outer: string): string | undefined {
  const text = canonicalJson(value, gap.length) as string | undefined;
  return text === undefined || outer === '' || gap === '' ? text : text.replaceAll('\n', `\n${outer}`);
}

function* chunks(value: unknown, gap: string, outer: string, depth: number): Generator<string> {
  if (!splits(value, depth)) {
    yield whole(value, gap, outer) ?? 'null';
    return;
  }
  const inner = outer + gap;
  const open = gap === '' ? '' : `\n${inner}`;
  const separator = gap === '' ? ',' : `,\n${inner}`;
  const close = gap === '' ? '' : `\n${outer}`;
  if (Array.isArray(value)) {
    if (value.length === 0) return yield '[]';
    yield `[${open}`;
    for (let i = 0; i < value.length; i++) {
      if (i > 0) yield separator;
      // As JSON.stringify: what has no JSON form is null in an array (whole() gives undefined for it).
      yield* chunks(value[i], gap, inner, depth - 1);
    }
    return yield `${close}]`;
  }
  let first = true;
  for (const key of sortedKeys(value)) {
    const member = (value as Record<string, unknown>)[key];
    const text = splits(member, depth - 1) ? undefined : whole(member, gap, inner);
    // As JSON.stringify: a member with no JSON form (undefined, a function) is left out.
    if (text === undefined && !splits(member, depth - 1)) continue;
    yield `${first ? `{${open}` : separator}${JSON.stringify(key)}${gap === '' ? ':' : ': '}`;
    first = false;
    if (text !== undefined) yield text;
    else yield* chunks(member, gap, inner, depth - 1);
  }
  yield first ? '{}' : `${close}}`;
}
