// Files bin/apply pins on a host beside its generations (host state that exists only once other
// hosts do: a provisioned backup host, provisioned peers): compared with what read-state reported
// of them, and written in one round trip, each replaced atomically.

import { shellQuote } from '../compile/env-file.ts';
import { lastLines, type Transport } from '../hosts/transport.ts';

/** A pinned file: its name in the pin directory, and its content. */
export type PinFile = readonly [name: string, content: string];

/** The files as the agent's read-state reports them: "<name> <line>" for each non-empty line, file by file. */
export function pinLines(files: readonly PinFile[]): string[] {
  return files.flatMap(([name, text]) => text.split('\n').filter((line) => line !== '').map((line) => `${name} ${line}`));
}

/**
 * One round trip on `t`'s host: every file written beside its place, then each moved into place
 * in the order given (the one a reader needs last goes last). `what` names the pin in an error.
 */
export async function installPinFiles(t: Transport, dir: string, files: readonly PinFile[], what: string): Promise<void> {
  const script = [
    'set -eu',
    'umask 022',
    `mkdir -p ${dir}`,
    ...files.map(([name, text]) => `printf '%s' ${shellQuote(text)} >${dir}/${name}.new`),
    ...files.map(([name]) => `mv -f ${dir}/${name}.new ${dir}/${name}`),
  ].join('\n');
  const result = await t.run(script);
  if (result.exitCode !== 0) throw new Error(`${t.host}: ${what} failed (exit ${result.exitCode}): ${lastLines(result.stderr, 3)}`);
}
