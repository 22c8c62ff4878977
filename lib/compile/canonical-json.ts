// JSON with object keys sorted at every level, so equal data always gives equal bytes.

export function canonicalJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_key, v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v), indent);
}
