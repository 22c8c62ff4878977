// Values from a policy reach the hosts' shell programs only through files like these, which the
// programs read with `.`; every value is single-quoted, so no policy text is ever parsed as shell.

/** `value` as one single-quoted POSIX shell word. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

const VARIABLE = /^[A-Z_][A-Z0-9_]*$/;

/** A file of `NAME='value'` lines, sorted by name, for a runtime program to source. */
export function renderEnvFile(header: string, vars: Readonly<Record<string, string | number>>): string {
  const lines = Object.keys(vars)
    .sort()
    .map((name) => {
      if (!VARIABLE.test(name)) throw new Error(`not a shell variable name: ${name}`);
      return `${name}=${shellQuote(String(vars[name]))}`;
    });
  return `# ${header}\n# Managed by upkeep; read by its runtime programs.\n${lines.join('\n')}\n`;
}
