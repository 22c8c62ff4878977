// lib/ imports in one direction only (design.md, Layout): every folder may import itself and the
// folders this table allows, nothing above it or beside it. Read from the source with the
// TypeScript parser, so comments and strings that merely look like imports do not count.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const LIB = join(import.meta.dirname, '..', 'lib');

/**
 * Folder of lib/ (or file at its top) -> what its files may import besides their own folder.
 * `runtime` holds the shell programs shipped to hosts: compile's, read as files wherever compile
 * may be imported.
 */
const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  policy: [],
  runtime: [],
  compile: ['policy', 'runtime'],
  plan: ['compile', 'runtime', 'policy'],
  hosts: ['plan', 'compile', 'runtime', 'policy'],
  engine: ['plan', 'compile', 'runtime', 'policy'],
  apply: ['hosts', 'engine', 'plan', 'compile', 'runtime', 'policy'],
  status: ['hosts', 'plan', 'compile', 'runtime', 'policy'],
  cli: ['status', 'apply', 'hosts', 'engine', 'plan', 'compile', 'runtime', 'policy', 'version.ts'],
  'version.ts': [],
  'index.ts': ['cli', 'status', 'apply', 'hosts', 'engine', 'plan', 'compile', 'runtime', 'policy', 'version.ts'],
};

/** The folder of lib/ a path lies in, or the file's name for files at lib's top; undefined outside lib/. */
function partOf(path: string): string | undefined {
  const rel = relative(LIB, path);
  if (rel === '' || rel.startsWith('..')) return undefined;
  return rel.split(sep)[0];
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

const isImportMetaUrl = (node: ts.Node): boolean =>
  ts.isPropertyAccessExpression(node) && node.name.text === 'url' && ts.isMetaProperty(node.expression) && node.expression.keywordToken === ts.SyntaxKind.ImportKeyword;

/** Relative specifiers a file refers to: import/export ... from, import(), new URL('...', import.meta.url). */
function referencesOf(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [arg] = node.arguments;
      // A computed import() (a policy file named at run time) refers to no lib folder.
      if (arg && ts.isStringLiteralLike(arg)) found.push(arg.text);
    } else if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'URL') {
      const [target, base] = node.arguments ?? [];
      if (target && base && isImportMetaUrl(base)) {
        if (ts.isStringLiteralLike(target)) found.push(target.text);
        else if (ts.isTemplateExpression(target)) found.push(target.head.text);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found.filter((s) => s.startsWith('.'));
}

/** Every "file: import" in lib/ that points up or sideways against MAY_IMPORT. */
function violations(): string[] {
  const out: string[] = [];
  for (const file of tsFiles(LIB).sort()) {
    const from = partOf(file) as string;
    for (const specifier of referencesOf(file, readFileSync(file, 'utf8'))) {
      const to = partOf(resolve(dirname(file), specifier));
      const allowed = to === from || (to !== undefined && (MAY_IMPORT[from] ?? []).includes(to));
      if (!allowed) out.push(`lib/${relative(LIB, file).split(sep).join('/')}: ${specifier}`);
    }
  }
  return out;
}

describe('the layers of lib/', () => {
  it('has a row in the table for every folder and top-level file of lib/', () => {
    const parts = readdirSync(LIB).filter((name) => !name.endsWith('.md'));
    expect(parts.filter((p) => !(p in MAY_IMPORT))).toEqual([]);
  });

  it('reads static, type-only, re-export, dynamic and import.meta.url references, not comments or package imports', () => {
    const text = [
      "import { a } from '../plan/a.ts';",
      "import type { B } from '../hosts/b.ts';",
      "export * from './c.ts';",
      "export { d } from '../engine/d.ts';",
      "const e = await import('../apply/e.ts');",
      "const f = new URL('../runtime/f.sh', import.meta.url);",
      "const g = new URL(`../runtime/${name}`, import.meta.url);",
      "// import { h } from '../cli/h.ts';",
      "import { readFileSync } from 'node:fs';",
      "const i = await import(pathToFileURL(file).href);",
    ].join('\n');
    expect(referencesOf('x.ts', text)).toEqual(['../plan/a.ts', '../hosts/b.ts', './c.ts', '../engine/d.ts', '../apply/e.ts', '../runtime/f.sh', '../runtime/']);
  });

  it('imports one way only: no file imports a folder above or beside its own', () => {
    expect(violations()).toEqual([]);
  });
});
