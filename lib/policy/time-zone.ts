// Time zone names as systemd and the hosts' tz database take them: exactly, capitals included.
// Intl (ICU) finds a zone whatever its case, so "europe/berlin" passes Intl, but systemd refuses
// `OnCalendar=Sun *-*-* 02:00:00 europe/berlin` and in-window.sh finds no
// /usr/share/zoneinfo/europe/berlin. A name is accepted only as the IANA database spells the zone.

import { didYouMean } from './did-you-mean.ts';

/** IANA names are letters, digits and "/_+-"; anything else could break a unit file or env file. */
const ZONE_NAME = /^[A-Za-z0-9_+\-]+(\/[A-Za-z0-9_+\-]+)*$/;

/**
 * Zones the IANA database calls by these names while Node's ICU (CLDR) still files them under an
 * older one (Asia/Kolkata under Asia/Calcutta), so Intl confirms only the old spelling; Etc/UTC and
 * Etc/GMT, which Intl files under UTC. Newer ICU versions confirm them by themselves.
 */
const RENAMED_ZONES = [
  'Africa/Asmara',
  'America/Argentina/Buenos_Aires',
  'America/Argentina/Catamarca',
  'America/Argentina/Cordoba',
  'America/Argentina/Jujuy',
  'America/Argentina/Mendoza',
  'America/Atikokan',
  'America/Indiana/Indianapolis',
  'America/Kentucky/Louisville',
  'America/Nuuk',
  'Asia/Ho_Chi_Minh',
  'Asia/Kathmandu',
  'Asia/Kolkata',
  'Asia/Yangon',
  'Atlantic/Faroe',
  'Etc/GMT',
  'Etc/UTC',
  'Europe/Kyiv',
  'Pacific/Chuuk',
  'Pacific/Kanton',
  'Pacific/Pohnpei',
];

let spelled: ReadonlySet<string> | undefined;
/** Every zone name whose exact spelling is known: Intl's own names, UTC, and the renamed zones. */
function knownSpellings(): ReadonlySet<string> {
  spelled ??= new Set([...Intl.supportedValuesOf('timeZone'), 'UTC', ...RENAMED_ZONES]);
  return spelled;
}

/** Intl's name for `zone` (it matches names whatever their case), or undefined when Intl knows no such zone. */
function intlName(zone: string): string | undefined {
  try {
    return new Intl.DateTimeFormat('en', { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

/** Whether Intl knows `zone` as a time zone, whatever its spelling (timeZoneProblem says whether it is spelled right). */
export function isTimeZoneName(zone: string): boolean {
  return ZONE_NAME.test(zone) && intlName(zone) !== undefined;
}

/** Undefined when `zone` is an IANA time zone spelled exactly as the tz database does, else what is wrong with it. */
export function timeZoneProblem(zone: string): string | undefined {
  const known = knownSpellings();
  const intl = ZONE_NAME.test(zone) ? intlName(zone) : undefined;
  if (intl === undefined) return `"${zone}" is not an IANA time zone such as "Europe/Berlin"${didYouMean(zone, known)}`;
  if (zone === intl || known.has(zone)) return undefined;
  const lower = zone.toLowerCase();
  const exact = intl.toLowerCase() === lower ? intl : [...known].find((name) => name.toLowerCase() === lower);
  if (exact !== undefined) return `"${zone}" is not spelled as the IANA time zone is: systemd and the hosts' tz database match names exactly, capitals included — did you mean "${exact}"?`;
  return `"${zone}" is another name (a link) for the IANA time zone "${intl}": write the zone's own name, which every tz database has — did you mean "${intl}"?`;
}
