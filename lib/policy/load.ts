// load: the only step of the policy pipeline that reads files. A TypeScript module is imported
// (upkeep always runs under tsx); a YAML file is parsed keeping positions. Both are checked
// against the fleet schema, so the later steps can rely on the shape of what they get.

import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PolicyError, type PolicySource } from './errors.ts';
import { checkFleetShape } from './fleet-shape.ts';
import type { FleetSpec } from './model.ts';
import { parseYamlPolicy } from './yaml-source.ts';

export { checkFleetShape } from './fleet-shape.ts';

const MODULE_EXTENSIONS = new Set(['.ts', '.mts', '.js', '.mjs']);
const YAML_EXTENSIONS = new Set(['.yaml', '.yml']);

/** A TypeScript policy has no positions to show: messages name the file and the policy path. */
function moduleSource(file: string): PolicySource {
  return { file, locate: () => undefined };
}

function fail(file: string, message: string): never {
  throw new PolicyError([{ path: [], message }], moduleSource(file));
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    fail(file, code === 'ENOENT' ? 'no such policy file' : `cannot read the policy file (${code ?? String(error)})`);
  }
}

async function loadModule(file: string): Promise<{ spec: FleetSpec; source: PolicySource }> {
  await readText(file);
  const source = moduleSource(file);
  let module: { default?: unknown; fleet?: unknown };
  try {
    module = (await import(pathToFileURL(resolve(file)).href)) as typeof module;
  } catch (error) {
    fail(file, `the policy module failed to load: ${error instanceof Error ? error.message : String(error)}`);
  }
  const spec = module.default ?? module.fleet;
  if (spec === undefined) fail(file, 'the policy module has no fleet: export it as the default export or as `export const fleet`');
  checkFleetShape(spec, source);
  return { spec: spec as FleetSpec, source };
}

async function loadYaml(file: string): Promise<{ spec: FleetSpec; source: PolicySource }> {
  const { value, source, issues } = parseYamlPolicy(await readText(file), file);
  if (issues.length > 0) throw new PolicyError(issues, source);
  checkFleetShape(value, source);
  return { spec: value as FleetSpec, source };
}

/**
 * Loads a fleet policy from a TypeScript/JavaScript module (its default export, or a named
 * `fleet` export) or a YAML file, and checks its shape against the fleet schema.
 * @throws PolicyError naming the file (and, for YAML, line and column) and the policy path.
 */
export async function loadPolicy(file: string): Promise<{ spec: FleetSpec; source: PolicySource }> {
  const ext = extname(file).toLowerCase();
  if (MODULE_EXTENSIONS.has(ext)) return loadModule(file);
  if (YAML_EXTENSIONS.has(ext)) return loadYaml(file);
  fail(file, `unsupported policy file type "${ext}": use .ts, .mts, .js, .mjs, .yaml or .yml`);
}
