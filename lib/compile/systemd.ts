// Rendering of systemd unit files (systemd.unit(5), systemd.service(5), systemd.timer(5)).
//
// Units are written by upkeep only under UNIT_PREFIX names, as plain files in UNIT_DIR, so the
// plan shows them and the applier can tell its own units from the system's.

import { RUNTIME_DIR, UNIT_DIR, UNIT_PREFIX, type ManagedFile } from './desired-state.ts';

/** A setting's value; a list writes the key once per item (e.g. several OnCalendar= lines). */
export type UnitValue = string | number | boolean | readonly string[];

/** Sections in the order they are written; keys within a section in insertion order. */
export type UnitSections = Readonly<Record<string, Readonly<Record<string, UnitValue | undefined>>>>;

/** Unit names upkeep writes: its prefix, then lower-case words joined by "-". */
const UNIT_NAME = /^upkeep-[a-z0-9]+(?:-[a-z0-9]+)*(?:@?\.service|\.timer|\.socket)$/;

function renderValue(value: string | number | boolean): string {
  const text = typeof value === 'boolean' ? (value ? 'yes' : 'no') : String(value);
  if (/[\n\r]/.test(text)) throw new Error(`a unit setting cannot span lines: ${JSON.stringify(text)}`);
  // "%" starts a specifier in every unit setting; policy text such as "5%" must stay literal.
  return text.replaceAll('%', '%%');
}

/** The text of a unit file. */
export function renderUnit(sections: UnitSections): string {
  const blocks = Object.entries(sections).map(([section, settings]) => {
    const lines = [`[${section}]`];
    for (const [key, value] of Object.entries(settings)) {
      if (value === undefined) continue;
      for (const item of Array.isArray(value) ? value : [value]) lines.push(`${key}=${renderValue(item as string | number | boolean)}`);
    }
    return lines.join('\n');
  });
  return `# Managed by upkeep.\n${blocks.join('\n\n')}\n`;
}

/**
 * One command-line word for ExecStart= and friends: double-quoted, with the characters systemd
 * would otherwise expand (variables "$") or unescape ("\", '"') escaped; renderUnit escapes "%".
 */
export function execArg(word: string): string {
  if (/[\n\r]/.test(word)) throw new Error(`a command argument cannot span lines: ${JSON.stringify(word)}`);
  return `"${word.replace(/[\\"]/g, (c) => `\\${c}`).replaceAll('$', '$$$$')}"`;
}

/** An ExecStart= line running the runtime program `script` with `args`. */
export function runtimeCommand(script: string, ...args: string[]): string {
  return [`${RUNTIME_DIR}/${script}`, ...args].map((w, i) => (i === 0 ? w : execArg(w))).join(' ');
}

/** A unit file upkeep manages, checked to carry upkeep's prefix and a safe name. */
export function unitFile(name: string, sections: UnitSections): ManagedFile {
  if (!UNIT_NAME.test(name) || !name.startsWith(UNIT_PREFIX)) throw new Error(`not an upkeep unit name: ${name}`);
  return { path: `${UNIT_DIR}/${name}`, mode: '0644', owner: 'root:root', content: renderUnit(sections) };
}

/** A systemd time span in seconds, e.g. "900s"; systemd accepts it everywhere a span goes. */
export function seconds(value: number): string {
  return `${Math.round(value)}s`;
}

/**
 * A socket-activated answer to other hosts: `<name>.socket` accepts on `listen` and each connection
 * runs `<name>@.service`, which runs the runtime program `script` on it without privileges
 * (a dynamic user, read-only system) for at most ten seconds.
 *
 * With `credentials` (name -> file, e.g. a host key to sign with), the service receives those
 * files as systemd credentials and runs as root without any capability and without a network of
 * its own (it answers on the socket it was given) instead: the programs that use such files
 * (ssh-keygen) want a user in the passwd database, which a dynamic user is only where the host
 * runs nss-systemd.
 *
 * `hidden` paths do not exist for the service (InaccessiblePaths=, "-": nor when they are absent).
 */
export function socketServedFiles(
  name: string,
  listen: { readonly stream: string; readonly freeBind?: boolean },
  descriptions: { readonly socket: string; readonly service: string },
  script: string,
  credentials: Readonly<Record<string, string>> = {},
  hidden: readonly string[] = [],
): ManagedFile[] {
  const loaded = Object.entries(credentials).map(([id, path]) => `${id}:${path}`);
  return [
    unitFile(`${name}.socket`, {
      Unit: { Description: descriptions.socket },
      // FreeBind: the address may come up after the socket (a late network).
      Socket: { ListenStream: listen.stream, ...(listen.freeBind && { FreeBind: true }), Accept: true, MaxConnections: 16 },
      Install: { WantedBy: 'sockets.target' },
    }),
    unitFile(`${name}@.service`, {
      Unit: { Description: descriptions.service },
      Service: {
        ExecStart: runtimeCommand(script),
        StandardInput: 'socket',
        StandardOutput: 'socket',
        StandardError: 'journal',
        RuntimeMaxSec: '10s',
        ProtectSystem: 'strict',
        ProtectHome: true,
        PrivateTmp: true,
        NoNewPrivileges: true,
        ...(hidden.length > 0 && { InaccessiblePaths: hidden.map((path) => `-${path}`).join(' ') }),
        ...(loaded.length === 0
          ? { DynamicUser: true }
          : { LoadCredential: loaded, CapabilityBoundingSet: '', PrivateNetwork: true, PrivateDevices: true }),
      },
    }),
  ];
}
