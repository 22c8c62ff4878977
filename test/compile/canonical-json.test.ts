// canonicalJson is exactly its definition (JSON.stringify with a key-sorting replacer), and
// canonicalJsonChunks' pieces, which plan.json is written and plan_id hashed in, join to exactly
// canonicalJson's text, at every depth, for the values JSON.stringify treats specially and for
// random documents; and a real plan document gives the same plan.json and plan_id either way.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson, canonicalJsonChunks } from '../../lib/compile/canonical-json.ts';
import { compileFleet } from '../../lib/compile/fleet.ts';
import { buildPlan, planIdOf } from '../../lib/plan/build-plan.ts';
import { planJsonText } from '../../lib/plan/plan-dir.ts';
import { prepareFleet } from '../../lib/policy/prepare.ts';
import { generatedFleet } from '../fixtures/generated-fleet.ts';

const joined = (value: unknown, indent: number | undefined, depth: number) => [...canonicalJsonChunks(value, indent, depth)].join('');

/** canonicalJson's definition: JSON.stringify with every non-array object rebuilt from its entries sorted by key. */
const defined = (value: unknown, indent: number | undefined) =>
  JSON.stringify(value, (_key, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v), indent);

/** A seeded generator: the same random documents on every run. */
function random(seed: number): () => number {
  let s = seed;
  return () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
}

describe('canonicalJsonChunks', () => {
  const special: unknown[] = [
    null, 0, -0, 1.5, NaN, Infinity, 'a"\u2028\n\u0000é', true, [], {},
    [undefined, () => 1, Symbol('x'), null],
    { b: 1, a: undefined, c: () => 1, '10': 1, '9': 2, '01': 3, Z: 4, é: 5, '4294967295': 6, '4294967294': 7 },
    { d: new Date(0), m: new Map([[1, 2]]), n: new Number(3), s: new String('ab') },
    [[[]], {}, [{}], { x: [] }],
    { toJSON: () => ({ z: 1, a: 2 }) },
    { t: { toJSON: () => undefined }, u: 1 },
    { a: {}, b: [], c: { d: {} }, e: { f: [1, { h: 'x\ny', g: null }] } },
    JSON.parse('{"b":1,"__proto__":{"y":1,"x":2},"a":[{"__proto__":null}]}'),
    Object.assign(Object.create(null), { b: 1, a: Object.assign(Object.create(null), { d: 1, c: 2 }) }),
  ];

  it.each(special.map((v, i) => [i, v]))('joins to canonicalJson for special value %i at every depth and indent', (_i, value) => {
    for (const indent of [undefined, 2, 4]) {
      expect(canonicalJson(value, indent)).toBe(defined(value, indent));
      for (const depth of [0, 1, 2, 3, 6]) expect(joined(value, indent, depth)).toBe(canonicalJson(value, indent));
    }
  });

  it('joins to canonicalJson for 3,000 random documents', () => {
    const next = random(7);
    const keys = ['a', 'B', '1', '20', '3', 'é', '_', 'aa', '010'];
    const leaves = [1, 'x\ny', null, true, 2.5, undefined, -0];
    const value = (depth: number): unknown => {
      const r = next();
      if (depth > 4 || r < 0.3) return leaves[Math.floor(next() * leaves.length)];
      if (r < 0.6) return Array.from({ length: Math.floor(next() * 4) }, () => value(depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(next() * 5); i > 0; i--) o[keys[Math.floor(next() * keys.length)]! + (next() < 0.5 ? '' : 'k')] = value(depth + 1);
      return o;
    };
    for (let i = 0; i < 3000; i++) {
      // A document, never undefined itself (which JSON.stringify gives no text for at all).
      const v = value(0) ?? null;
      for (const indent of [undefined, 2]) {
        expect(canonicalJson(v, indent)).toBe(defined(v, indent));
        expect(joined(v, indent, 1 + (i % 3))).toBe(canonicalJson(v, indent));
      }
    }
  });

  it('gives the defined text for documents already in key order, which it serializes as they are', () => {
    // Objects are built key by key in sorted order, as the plan's own objects are, with one
    // exception somewhere below: an unsorted object, an own "__proto__" key, a Date, a toJSON.
    const sortedRebuild = (v: unknown): unknown =>
      v && typeof v === 'object' && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, x]) => [k, sortedRebuild(x)]))
        : Array.isArray(v) ? v.map(sortedRebuild) : v;
    const exceptions: unknown[] = [{ b: 1, a: 2 }, JSON.parse('{"__proto__":{"b":1,"a":2},"a":1}'), new Date(0), { toJSON: () => ({ b: 1, a: 2 }) }, { '10': 1, '9': 2, b: { d: 1, c: 2 }, a: 3 }];
    const next = random(11);
    for (let i = 0; i < 500; i++) {
      const exception = exceptions[i % exceptions.length];
      const deep = sortedRebuild({ a: [{ b: 1, c: { d: [i, { e: 'x', f: null }] } }], g: { h: { i: [] } }, k: next() });
      // The exception replaces a value at some depth of the sorted document.
      const spot = [(d: Record<string, any>) => (d.a[0].c.d[1].f = exception), (d: Record<string, any>) => (d.g.h.i = [exception]), (d: Record<string, any>) => (d.k = exception)][i % 3]!;
      const withException = structuredClone(deep) as Record<string, unknown>;
      spot(withException as Record<string, any>);
      for (const indent of [undefined, 2]) {
        expect(canonicalJson(deep, indent)).toBe(defined(deep, indent));
        expect(canonicalJson(withException, indent)).toBe(defined(withException, indent));
        expect(joined(withException, indent, 2)).toBe(defined(withException, indent));
      }
    }
  });

  it("gives a plan's plan.json and plan_id as the whole text does", () => {
    const fleet = prepareFleet(generatedFleet(30));
    const { document } = buildPlan({ fleet, hosts: compileFleet(fleet).hosts, base: new Map(), policy: 'fleet.ts', metadata: { created_at: '', upkeep_version: '' } });
    expect(planJsonText(document)).toBe(`${canonicalJson(document, 2)}\n`);
    const { plan_id: _id, metadata: _m, ...reviewed } = document;
    expect(planIdOf(document)).toBe(createHash('sha256').update(canonicalJson(reviewed)).digest('hex'));
    expect(document.plan_id).toBe(planIdOf(document));
  });
});
