// Words from a policy that go into files the hosts' shell programs read field by field: checked
// against what such a word may be, refused otherwise (never quoted into something else).

/** Debian/Ubuntu package names: lower-case letters, digits and "+-."; anything else is refused. */
export const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]*$/;

/** `value` when it matches `pattern`; throws naming `what` otherwise. */
export function checked(value: string, pattern: RegExp, what: string): string {
  if (!pattern.test(value)) throw new Error(`${what} ${JSON.stringify(value)} cannot be used on a host`);
  return value;
}
