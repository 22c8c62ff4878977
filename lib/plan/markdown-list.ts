// Long lists in plan.md. plan.md must fit one pull-request comment, so at scale a section keeps its
// headline and every count, and shows the first items of a list with how many it leaves out
// (plan.json has them all).

/** In compact plan.md, the items shown of one list. */
export const COMPACT_LIST_ITEMS = 20;

/** `items` when not `compact` or short enough; else the first ones and a line saying how many more. */
export function cappedLines(items: readonly string[], compact: boolean, what: string): string[] {
  if (!compact || items.length <= COMPACT_LIST_ITEMS) return [...items];
  return [...items.slice(0, COMPACT_LIST_ITEMS), `- _… and ${items.length - COMPACT_LIST_ITEMS} more ${what} (plan.json lists them all)_`];
}

/** Already escaped names joined by ", ", at most `limit` of them and how many more. */
export function cappedNames(names: readonly string[], limit: number): string {
  const shown = names.slice(0, limit).join(', ');
  return names.length > limit ? `${shown} and ${names.length - limit} more` : shown;
}
