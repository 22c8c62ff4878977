// YAML policies: parsed with `yaml` keeping node ranges, so every issue found later (schema,
// resolve, validate) can be shown at the line and column where the author wrote the value.

import { isAlias, isCollection, isMap, isNode, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Alias, type Document, type Node, type Pair, type YAMLMap } from 'yaml';
import type { PolicyIssue, PolicyPath, PolicySource, SourceLocation } from './errors.ts';

/** What the author wrote at `key` of a mapping: the key itself, so a block value is shown at its name. */
interface Located {
  readonly node: Node | null;
  readonly at: number | undefined;
}

function offsetOf(node: unknown): number | undefined {
  return node && typeof node === 'object' && 'range' in node ? (node as Node).range?.[0] : undefined;
}

function keyName(key: unknown): string {
  // A merge key's value is a symbol; its description is what the author wrote ("<<").
  const value = isScalar(key) ? key.value : key;
  if (typeof value === 'symbol') return String(value.description);
  // A mapping or list used as a key (never a policy key) is stringified by resolving its merges,
  // which throws for a bad one; toJS reports that problem, located.
  try {
    return String(value);
  } catch {
    return '(a mapping or list used as a key)';
  }
}

/** Pairs of each mapping by key name, built on first use: a fleet of 10,000 hosts is located often. */
const pairsByName = new WeakMap<object, Map<string, Pair>>();

function pairOf(map: YAMLMap, name: string): Pair | undefined {
  let pairs = pairsByName.get(map);
  if (!pairs) {
    pairs = new Map();
    for (const pair of map.items) if (!pairs.has(keyName(pair.key))) pairs.set(keyName(pair.key), pair);
    pairsByName.set(map, pairs);
  }
  return pairs.get(name);
}

function child(node: Node | null, segment: string | number): Located | undefined {
  if (isMap(node)) {
    const pair = pairOf(node, String(segment));
    return pair ? { node: (pair.value as Node | null) ?? null, at: offsetOf(pair.key) } : undefined;
  }
  if (isSeq(node) && typeof segment === 'number') {
    const item = node.items[segment] as Node | undefined;
    return item ? { node: item, at: offsetOf(item) } : undefined;
  }
  return undefined;
}

/** The policy path of the deepest node that contains `offset` (keys included). */
function pathAt(root: Node | null, offset: number): PolicyPath {
  const path: (string | number)[] = [];
  let node = root;
  for (;;) {
    let next: Node | null | undefined;
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = pair.key as Node | null;
        const value = pair.value as Node | null;
        const name = keyName(key);
        if (key?.range && offset >= key.range[0] && offset < key.range[2]) return [...path, name];
        if (value?.range && offset >= value.range[0] && offset < value.range[2]) {
          path.push(name);
          next = value;
          break;
        }
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        const range = (item as Node | null)?.range;
        if (next === undefined && range && offset >= range[0] && offset < range[2]) {
          path.push(i);
          next = item as Node;
        }
      });
    }
    if (next === undefined) return path;
    node = next;
  }
}

class YamlSource implements PolicySource {
  /** Issues found by the parser carry their own position (a duplicate key is not the first one). */
  private readonly pinned = new Map<PolicyPath, SourceLocation>();

  constructor(
    readonly file: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  pin(path: PolicyPath, offset: number): void {
    this.pinned.set(path, this.position(offset));
  }

  private position(offset: number): SourceLocation {
    const { line, col } = this.lines.linePos(offset);
    return { line, column: col };
  }

  locate(path: PolicyPath): SourceLocation | undefined {
    const pinned = this.pinned.get(path);
    if (pinned) return pinned;
    // A path that does not exist (a missing key) is shown at the nearest thing that does.
    let node = this.doc.contents as Node | null;
    let at = offsetOf(node);
    for (const segment of path) {
      const next = child(node, segment);
      if (!next) break;
      node = next.node;
      at = next.at ?? at;
    }
    return at === undefined ? undefined : this.position(at);
  }
}

/** The first sentence of a `yaml` error, without the position and code excerpt it appends. */
function plainMessage(message: string): string {
  return message.replace(/ at line \d+, column \d+:[\s\S]*$/, '');
}

/**
 * Offsets of keys that repeat an earlier key of the same mapping. `yaml`'s own uniqueKeys check
 * compares every key with every earlier one, which takes seconds for a fleet of 10,000 hosts.
 */
function duplicateKeys(doc: Document): number[] {
  const offsets: number[] = [];
  visit(doc, {
    Map(_, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        const name = keyName(pair.key);
        if (seen.has(name)) offsets.push(offsetOf(pair.key) ?? 0);
        seen.add(name);
      }
    },
  });
  return offsets;
}

/**
 * The deepest node that cannot be turned into data: an alias without an anchor before it, a merge
 * (`<<`) of something other than a mapping. The parser accepts these; only
 * `toJS` finds them, and it throws without saying where.
 */
function failingNode(doc: Document, node: unknown): Node | undefined {
  if (!isNode(node)) return undefined;
  try {
    node.toJS(doc, { maxAliasCount: -1 });
    return undefined;
  } catch {
    if (isCollection(node)) {
      for (const item of node.items) {
        for (const part of isPair(item) ? [item.key, item.value] : [item]) {
          const deeper = failingNode(doc, part);
          if (deeper) return deeper;
        }
      }
      // Every part converts on its own: what fails is a merge (`<<`) into this mapping.
      const merge = node.items.find((item) => isPair(item) && isScalar(item.key) && typeof item.key.value === 'symbol');
      if (isPair(merge) && isNode(merge.key)) return merge.key;
    }
    return node;
  }
}

/**
 * How many times its own size the document may grow when its aliases are expanded (and a floor,
 * so a small file may still reuse a block many times). Expanding costs time and memory in
 * proportion to the expanded size: a few hundred kilobytes of nested aliases ("billion laughs")
 * would otherwise take gigabytes. `yaml`'s own maxAliasCount counts aliases, not what they expand
 * to, and merge keys (`<<: *a`) bypass it.
 */
const ALIAS_GROWTH = 20;
const ALIAS_FLOOR = 100_000;

/** A located problem with the document's aliases: one that expands too far, or names its own container. */
function aliasProblem(doc: Document): { offset: number; message: string } | undefined {
  // One pass in document order: values as written (an alias is one), and what each alias names,
  // the last node with its anchor before it (`yaml`'s Alias.resolve walks the whole document for
  // every alias, far too slow for a file made of aliases).
  let written = 0;
  const anchors = new Map<string, Node>();
  const aliases: Alias[] = [];
  const targets = new Map<Alias, Node | undefined>();
  visit(doc, {
    Node(_, node) {
      written++;
      if (isAlias(node)) {
        aliases.push(node);
        targets.set(node, anchors.get(node.source));
      } else if (node.anchor) anchors.set(node.anchor, node);
    },
  });
  const limit = Math.max(ALIAS_FLOOR, ALIAS_GROWTH * written);
  const sizes = new Map<Node, number>();
  const open = new Set<Node>();
  class Cycle extends Error {}
  // Values `node` stands for once every alias in it is replaced by what it names.
  const size = (node: unknown): number => {
    if (isAlias(node)) return size(targets.get(node));
    if (!isMap(node) && !isSeq(node)) return isScalar(node) ? 1 : 0;
    const known = sizes.get(node);
    if (known !== undefined) return known;
    if (open.has(node)) throw new Cycle();
    open.add(node);
    let total = 1;
    for (const item of node.items) total += isPair(item) ? size(item.key) + size(item.value) : size(item);
    open.delete(node);
    sizes.set(node, total);
    return total;
  };
  let expanded = written - aliases.length;
  for (const alias of aliases) {
    const offset = offsetOf(alias) ?? 0;
    try {
      expanded += size(alias);
    } catch (error) {
      if (!(error instanceof Cycle)) throw error;
      return { offset, message: `YAML alias *${alias.source} refers to a value that contains it: a policy cannot be infinite` };
    }
    if (expanded > limit) {
      return {
        offset,
        message: `YAML aliases expand this file to more than ${limit} values (${ALIAS_GROWTH} times the ${written} it holds) by alias *${alias.source}: an alias may repeat a part of the policy, not multiply it`,
      };
    }
  }
  return undefined;
}

/**
 * Parses a YAML policy. Syntax errors and duplicate keys (a host listed twice must not silently
 * replace the first) are returned as issues located where they are.
 */
export function parseYamlPolicy(text: string, file: string): { value: unknown; source: PolicySource; issues: PolicyIssue[] } {
  const lines = new LineCounter();
  // YAML 1.1 tags (!!timestamp, !!binary, !!set, !!omap) would make Dates, Buffers, Sets and Maps
  // where the model has text, lists and mappings: their values stay plain and are checked as such.
  const doc = parseDocument(text, { uniqueKeys: false, merge: true, prettyErrors: true, lineCounter: lines, resolveKnownTags: false });
  const source = new YamlSource(file, doc, lines);
  const root = doc.contents as Node | null;
  const located = (offset: number, message: (path: PolicyPath) => string): PolicyIssue => {
    const path = pathAt(root, offset);
    source.pin(path, offset);
    return { path, message: message(path) };
  };
  const issues = [
    ...doc.errors.map((error) =>
      located(error.pos[0], () =>
        error.code === 'TAB_AS_INDENT' ? 'YAML syntax error: tabs are not allowed as indentation; indent with spaces' : `YAML syntax error: ${plainMessage(error.message)}`,
      ),
    ),
    ...duplicateKeys(doc).map((offset) =>
      located(offset, (path) => `duplicate key ${JSON.stringify(String(path.at(-1)))}: each key may appear only once (the later entry would silently replace the first)`),
    ),
  ];
  const aliases = issues.length === 0 ? aliasProblem(doc) : undefined;
  if (aliases) issues.push(located(aliases.offset, () => aliases.message));
  if (issues.length > 0) return { value: undefined, source, issues };
  try {
    // aliasProblem bounds what toJS builds, in proportion to the file; maxAliasCount would also
    // refuse a large fleet that reuses a block in more than a thousand places.
    return { value: doc.toJS({ maxAliasCount: -1 }), source, issues };
  } catch (error) {
    const at = offsetOf(failingNode(doc, root)) ?? offsetOf(root) ?? 0;
    return { value: undefined, source, issues: [located(at, () => `YAML error: ${plainMessage(error instanceof Error ? error.message : String(error))}`)] };
  }
}
