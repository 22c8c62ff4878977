// The Debian mirror this machine's own apt uses, for building test images from the same place.
// Read from the apt sources at run time, so no registry's host name is written into the project:
// the mirror a machine may reach is whatever its administrator configured.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface AptSource {
  readonly uri: string;
  readonly suites: readonly string[];
  readonly components: readonly string[];
  readonly signedBy?: string;
}

/** Entries of one sources file: deb822 (`.sources`) or one-line (`.list`), `deb` types only. */
export function parseAptSources(text: string, format: 'deb822' | 'one-line'): AptSource[] {
  return format === 'deb822' ? parseDeb822(text) : parseOneLine(text);
}

function parseOneLine(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    // deb [signed-by=/usr/share/keyrings/x.gpg arch=amd64] URI SUITE COMPONENT...
    const match = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)(.*)$/.exec(line);
    if (!match) continue;
    const options = match[1] ?? '';
    const signedBy = /(?:^|\s)signed-by=(\S+)/.exec(options)?.[1];
    sources.push({ uri: match[2]!, suites: [match[3]!], components: match[4]!.trim().split(/\s+/).filter(Boolean), signedBy });
  }
  return sources;
}

function parseDeb822(text: string): AptSource[] {
  const sources: AptSource[] = [];
  const stanzas = text.split(/\n\s*\n/);
  for (const stanza of stanzas) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const line of stanza.split('\n')) {
      if (line.startsWith('#')) continue;
      // A continuation line belongs to the field before it (multi-line Signed-By keys).
      if (/^\s/.test(line) && last !== undefined) {
        fields.set(last, `${fields.get(last)!}\n${line.trim()}`);
        continue;
      }
      const match = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (!match) continue;
      last = match[1]!.toLowerCase();
      fields.set(last, match[2]!.trim());
    }
    if (!(fields.get('types') ?? '').split(/\s+/).includes('deb')) continue;
    if ((fields.get('enabled') ?? 'yes').toLowerCase() === 'no') continue;
    const words = (name: string) => (fields.get(name) ?? '').split(/\s+/).filter(Boolean);
    for (const uri of words('uris')) {
      sources.push({ uri, suites: words('suites'), components: words('components'), signedBy: fields.get('signed-by') });
    }
  }
  return sources;
}

/**
 * The Debian archive among `sources`: not a snapshot archive (debootstrap cannot use a frozen
 * date for a current suite), not the security suite, not a third-party repository (those carry
 * their own keyring; Debian's entries use the archive keyring or none). undefined when none is.
 */
export function debianArchive(sources: readonly AptSource[]): string | undefined {
  const archive = sources.find((source) => {
    if (/snapshot\./.test(source.uri)) return false;
    if (source.suites.every((suite) => suite.endsWith('-security') || suite.includes('/'))) return false;
    if (!source.components.includes('main')) return false;
    return source.signedBy === undefined || source.signedBy.includes('debian-archive-keyring');
  });
  return archive?.uri.replace(/\/+$/, '');
}

/** The apt sources of this machine, in apt's own reading order. */
export function machineAptSources(root = '/'): AptSource[] {
  const sources: AptSource[] = [];
  const list = join(root, 'etc/apt/sources.list');
  if (existsSync(list)) sources.push(...parseAptSources(readFileSync(list, 'utf8'), 'one-line'));
  const dir = join(root, 'etc/apt/sources.list.d');
  if (existsSync(dir)) {
    for (const name of readdirSync(dir).sort()) {
      // apt reads only these two extensions; `foo.list.disabled` is not a source.
      if (name.endsWith('.list')) sources.push(...parseAptSources(readFileSync(join(dir, name), 'utf8'), 'one-line'));
      if (name.endsWith('.sources')) sources.push(...parseAptSources(readFileSync(join(dir, name), 'utf8'), 'deb822'));
    }
  }
  return sources;
}

/** The mirror to build test images from: UPKEEP_TESTBED_MIRROR, or the machine's own Debian archive. */
export function testbedMirror(env: NodeJS.ProcessEnv = process.env, root = '/'): string {
  if (env.UPKEEP_TESTBED_MIRROR) return env.UPKEEP_TESTBED_MIRROR;
  const mirror = debianArchive(machineAptSources(root));
  if (mirror === undefined) {
    throw new Error(`no Debian archive in ${join(root, 'etc/apt/sources.list')} or sources.list.d/: set UPKEEP_TESTBED_MIRROR to a Debian mirror`);
  }
  return mirror;
}

// `npx tsx test/fleet/apt-mirror.ts` prints the mirror, for shell scripts.
if (import.meta.url === `file://${process.argv[1]}`) console.log(testbedMirror());
