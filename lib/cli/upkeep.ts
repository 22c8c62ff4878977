// upkeep: one command for the whole flow. `upkeep plan ...` and `upkeep apply ...` run exactly what
// bin/plan and bin/apply run (same options, output and exit codes); those two stay for pipelines.
// `upkeep restore` restores a host's files from its backups.

import { UPKEEP_VERSION } from '../version.ts';
import { exitWith, isMain } from './run-command.ts';

interface Command {
  /** One line for `upkeep --help`. */
  readonly summary: string;
  /** Runs the command with the arguments after its name; resolves to its exit code. */
  readonly run: (argv: readonly string[]) => Promise<number>;
}

// A command's module is loaded only when it runs.
const COMMANDS: Readonly<Record<string, Command>> = {
  plan: {
    summary: 'load, validate and compile a policy; write a plan directory for review',
    run: async (argv) => (await import('./plan.ts')).runPlan(argv),
  },
  apply: {
    summary: 'roll a reviewed plan directory out to its hosts over ssh, staging first',
    run: async (argv) => (await (await import('./apply.ts')).runApply(argv)).exitCode,
  },
  update: {
    summary: 'run an update wave: staging installs, production gets exactly the versions staging ran',
    run: async (argv) => (await import('./update.ts')).runUpdate(argv),
  },
  status: {
    summary: 'read every host of a plan and report whether it keeps the maintenance contract',
    run: async (argv) => (await import('./status.ts')).runStatus(argv),
  },
  restore: {
    summary: "restore a host's files from its backups, by date or snapshot, in one ssh round trip",
    run: async (argv) => (await import('./restore.ts')).runRestore(argv),
  },
};

const HELP = `Usage: upkeep COMMAND [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, command]) => `  ${name.padEnd(8)} ${command.summary}\n`)
  .join('')}
  upkeep COMMAND --help   options and exit codes of one command
  -h, --help              this text
  --version               print upkeep's version

bin/plan and bin/apply are the same commands under their own names, for pipelines.
`;

function commandOf(name: string | undefined): Command | undefined {
  return name !== undefined && Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
}

/** Runs `upkeep` with `argv`; resolves to the exit code. */
async function runUpkeep(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    process.stderr.write(HELP);
    return 1;
  }
  if (name === '-h' || name === '--help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (name === '--version') {
    process.stdout.write(`${UPKEEP_VERSION}\n`);
    return 0;
  }
  const command = commandOf(name);
  if (command === undefined) throw new Error(`unknown command ${JSON.stringify(name)}: expected one of ${Object.keys(COMMANDS).join(', ')} (see upkeep --help)`);
  return command.run(rest);
}

if (isMain(import.meta.url)) {
  const argv = process.argv.slice(2);
  // Errors of a command name it as typed: "upkeep plan: ...".
  exitWith(commandOf(argv[0]) ? `upkeep ${argv[0]}` : 'upkeep', runUpkeep(argv));
}
