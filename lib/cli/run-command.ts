// How a command ends, the same for bin/plan, bin/apply and upkeep: exit with the command's code, or
// say what went wrong in one line on stderr, prefixed with the name it was called by, and exit 1.

import { resolve } from 'node:path';

/** Whether the module at `moduleUrl` is the program node runs, not a module another command loaded. */
export function isMain(moduleUrl: string): boolean {
  return process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(new URL(moduleUrl).pathname);
}

/** Exits with the code `run` resolves to; a failure is reported as "NAME: message" with exit 1. */
export function exitWith(name: string, run: Promise<number>): void {
  run.then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`${name}: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
