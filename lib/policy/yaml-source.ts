// YAML policies: parsed with `yaml` keeping node ranges, so every issue found later (schema,
// resolve, validate) can be shown at the line and column where the author wrote the value.

import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { PolicyIssue, PolicyPath, PolicySource, SourceLocation } from './errors.ts';

/** What the author wrote at `key` of a mapping: the key itself, so a block value is shown at its name. */
interface Located {
  readonly node: Node | null;
  readonly at: number | undefined;
}

function offsetOf(node: unknown): number | undefined {
  return node && typeof node === 'object' && 'range' in node ? (node as Node).range?.[0] : undefined;
}

function child(node: Node | null, segment: string | number): Located | undefined {
  if (isMap(node)) {
    const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(segment));
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
        const name = isScalar(key) ? String(key.value) : String(key);
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
 * Parses a YAML policy. Syntax errors and duplicate keys (a host listed twice must not silently
 * replace the first) are returned as issues located where the parser found them.
 */
export function parseYamlPolicy(text: string, file: string): { value: unknown; source: PolicySource; issues: PolicyIssue[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true, lineCounter: lines });
  const source = new YamlSource(file, doc, lines);
  const issues = doc.errors.map((error): PolicyIssue => {
    const path = pathAt(doc.contents as Node | null, error.pos[0]);
    source.pin(path, error.pos[0]);
    if (error.code === 'DUPLICATE_KEY') {
      const name = path.at(-1);
      return { path, message: `duplicate key ${JSON.stringify(String(name))}: each key may appear only once (the later entry would silently replace the first)` };
    }
    if (error.code === 'TAB_AS_INDENT') return { path, message: 'YAML syntax error: tabs are not allowed as indentation; indent with spaces' };
    return { path, message: `YAML syntax error: ${plainMessage(error.message)}` };
  });
  return { value: issues.length === 0 ? doc.toJS({ maxAliasCount: 1000 }) : undefined, source, issues };
}
