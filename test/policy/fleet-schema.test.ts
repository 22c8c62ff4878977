// The JSON Schema is written by hand for editors and YAML users; these tests keep it an exact
// mirror of the TypeScript model, read with the TypeScript compiler itself.

import { readdirSync, existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import schema from '../../lib/policy/fleet.schema.json' with { type: 'json' };
import { fleetShapeIssues } from '../../lib/policy/fleet-shape.ts';
import { parseYamlPolicy } from '../../lib/policy/yaml-source.ts';

type SchemaNode = { [key: string]: unknown };

const root = fileURLToPath(new URL('../../', import.meta.url));
const modelFile = `${root}lib/policy/model.ts`;
const program = ts.createProgram([modelFile], { strict: true, noEmit: true, allowImportingTsExtensions: true });
const checker = program.getTypeChecker();
const model = program.getSourceFile(modelFile)!;
const definitions = schema.definitions as unknown as Record<string, SchemaNode>;

/** Named types of the model: interfaces and type aliases, as the checker sees them (inherited members included). */
const modelTypes = new Map<string, ts.Type>();
const interfaces: string[] = [];
ts.forEachChild(model, (node) => {
  if (ts.isInterfaceDeclaration(node) || ts.isTypeAliasDeclaration(node)) {
    modelTypes.set(node.name.text, checker.getDeclaredTypeOfSymbol(checker.getSymbolAtLocation(node.name)!));
  }
  const exported = ts.getModifiers(node as ts.HasModifiers)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
  if (ts.isInterfaceDeclaration(node) && exported) interfaces.push(node.name.text);
});

function deref(node: SchemaNode): SchemaNode {
  return typeof node.$ref === 'string' ? deref(definitions[node.$ref.replace('#/definitions/', '')]) : node;
}

function schemaFor(name: string): SchemaNode {
  return name === 'FleetSpec' ? (schema as unknown as SchemaNode) : definitions[name];
}

function propertyNames(type: ts.Type): string[] {
  return checker.getPropertiesOfType(type).map((p) => p.name).sort();
}

function requiredNames(type: ts.Type): string[] {
  return checker.getPropertiesOfType(type).filter((p) => !(p.flags & ts.SymbolFlags.Optional)).map((p) => p.name).sort();
}

/** The literal values of a property's type when it is a union of literals ("never" | "always"), else undefined. */
function literals(type: ts.Type): (string | number)[] | undefined {
  const parts = (type.isUnion() ? type.types : [type]).filter((t) => !(t.flags & ts.TypeFlags.Undefined));
  if (parts.length === 0 || !parts.every((t) => t.isLiteral())) return undefined;
  return parts.map((t) => (t as ts.LiteralType).value as string | number).sort();
}

function schemaLiterals(node: SchemaNode): (string | number)[] | undefined {
  const n = deref(node);
  if (Array.isArray(n.enum)) return [...(n.enum as (string | number)[])].sort();
  if (n.const !== undefined) return [n.const as string];
  return undefined;
}

/** Exported interfaces of the model that have a schema definition of the same name (FleetSpec is the root). */
const objectTypes = interfaces.filter((name) => name === 'FleetSpec' || definitions[name]);
/** Unions whose members are told apart by which key they have: the schema lists every key of every member. */
const keyedUnions = ['SecretRef', 'BackupRepository', 'MitigationAction', 'StateBackend'];

describe('the fleet JSON Schema', () => {
  it('has a definition for every exported interface of the model', () => {
    expect(interfaces.filter((name) => !objectTypes.includes(name))).toEqual([]);
    expect(objectTypes).toEqual(expect.arrayContaining(['FleetSpec', 'HostSpec', 'GroupSpec', 'UpdatePolicy', 'BackupPolicy', 'MonitoringPolicy', 'WeeklyWindow']));
  });

  it.each(objectTypes)('lists exactly the properties of %s, with the same ones required, and no others', (name) => {
    const type = modelTypes.get(name)!;
    const def = schemaFor(name);
    expect(Object.keys(def.properties as object).sort()).toEqual(propertyNames(type));
    expect([...((def.required as string[] | undefined) ?? [])].sort()).toEqual(requiredNames(type));
    expect(def.additionalProperties).toBe(false);
  });

  it.each(objectTypes)('allows in %s exactly the literal values the model allows', (name) => {
    const type = modelTypes.get(name)!;
    const properties = schemaFor(name).properties as Record<string, SchemaNode>;
    for (const property of checker.getPropertiesOfType(type)) {
      const propertyType = checker.getTypeOfSymbol(property);
      const element = checker.isArrayType(checker.getNonNullableType(propertyType)) ? checker.getTypeArguments(checker.getNonNullableType(propertyType) as ts.TypeReference)[0] : undefined;
      const node = deref(properties[property.name]);
      const expected = literals(element ?? propertyType);
      if (expected === undefined) continue;
      expect({ property: property.name, values: schemaLiterals(element ? (node.items as SchemaNode) : node) }).toEqual({ property: property.name, values: expected });
    }
  });

  it.each(keyedUnions)('lists every key of every member of %s, and no others', (name) => {
    const type = modelTypes.get(name)!;
    const keys = new Set((type as ts.UnionType).types.flatMap(propertyNames));
    expect(Object.keys(definitions[name].properties as object).sort()).toEqual([...keys].sort());
    expect(definitions[name].additionalProperties).toBe(false);
  });

  it('has one branch per check kind, each with exactly the properties of that kind of check', () => {
    const checkType = modelTypes.get('Check')!;
    const members = (checkType as ts.UnionType).types;
    const branches = (definitions.Check.oneOf as SchemaNode[]).map(deref);
    const byKind = new Map(branches.map((b) => [(b.properties as Record<string, SchemaNode>).kind.const as string, b]));
    expect([...byKind.keys()].sort()).toEqual(literals(modelTypes.get('CheckKind')!));
    for (const member of members) {
      const kind = literals(checker.getTypeOfSymbol(member.getProperty('kind')!))![0] as string;
      const branch = byKind.get(kind)!;
      expect({ kind, properties: Object.keys(branch.properties as object).sort() }).toEqual({ kind, properties: propertyNames(member) });
      expect({ kind, required: [...(branch.required as string[])].sort() }).toEqual({ kind, required: requiredNames(member) });
      expect(branch.additionalProperties).toBe(false);
    }
  });

  it('describes every property for editors, from the model', () => {
    const undocumented: string[] = [];
    const visit = (node: unknown, path: string) => {
      if (!node || typeof node !== 'object') return;
      const n = node as SchemaNode;
      for (const [key, property] of Object.entries((n.properties as Record<string, SchemaNode> | undefined) ?? {})) {
        const documented = typeof property.description === 'string' || typeof deref(property).description === 'string' || 'const' in property;
        if (!documented) undocumented.push(`${path}.${key}`);
      }
      for (const [key, child] of Object.entries(n)) if (key !== 'properties') visit(child, `${path}/${key}`);
      for (const [key, child] of Object.entries((n.properties as object | undefined) ?? {})) visit(child, `${path}.${key}`);
    };
    visit(schema, '#');
    expect(undocumented).toEqual([]);
  });
});

describe('the bundled examples', () => {
  const tsExamples = readdirSync(`${root}examples`).filter((dir) => existsSync(`${root}examples/${dir}/fleet.ts`));

  it.each(tsExamples)('examples/%s/fleet.ts matches the schema after a JSON round trip', async (dir) => {
    const module = (await import(`${root}examples/${dir}/fleet.ts`)) as { default: unknown };
    expect(fleetShapeIssues(JSON.parse(JSON.stringify(module.default)))).toEqual([]);
  });

  it('examples/yaml/fleet.yaml matches the schema and points editors at it', () => {
    const text = readFileSync(`${root}examples/yaml/fleet.yaml`, 'utf8');
    const comment = /^# yaml-language-server: \$schema=(\S+)$/m.exec(text.split('\n')[0]);
    expect(comment?.[1]).toBe('../../lib/policy/fleet.schema.json');
    expect(existsSync(new URL(comment![1], new URL('../../examples/yaml/fleet.yaml', import.meta.url)))).toBe(true);
    const { value, issues } = parseYamlPolicy(text, 'examples/yaml/fleet.yaml');
    expect(issues).toEqual([]);
    expect(fleetShapeIssues(value)).toEqual([]);
  });
});
