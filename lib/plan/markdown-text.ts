// plan.md is posted as a pull-request comment, so every value that comes from the policy (or from a
// host, or the engine) is text in it, never markup: it cannot close a <details>, start a heading,
// add a link, an image, a table cell or an HTML tag, nor @mention anyone. Two helpers, used
// wherever such a value is interpolated: mdText for prose, table cells and HTML, mdCode for
// paths and names shown as code.

/** Characters that cannot be shown as themselves: controls, line and paragraph separators, bidi overrides, zero-width characters. */
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g;

/** `text` on one line with every invisible character shown as an escape, e.g. "\n" or "\u202e". */
function visible(text: string): string {
  return text.replace(INVISIBLE, (c) => ({ '\n': '\\n', '\r': '\\r', '\t': '\\t' })[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * `value` as literal text in markdown and in HTML (<summary>): markup characters become numeric
 * character references, which both read as the character itself, and "@" is followed by a
 * zero-width space so that GitHub does not turn it into a mention.
 */
export function mdText(value: string | number): string {
  return visible(String(value))
    .replace(/[\\`*_[\]()<>#!|~&]/g, (c) => `&#${c.charCodeAt(0)};`)
    .replace(/@/g, '@&#8203;');
}

/**
 * `value` as an inline code span: a fence longer than any run of backticks inside, padded when
 * the value starts or ends with one. Inside a table (`inTable`) "|" is escaped, which GFM undoes
 * in code spans of cells.
 */
export function mdCode(value: string, inTable = false): string {
  let text = visible(value);
  if (inTable) text = text.replace(/\|/g, '\\|');
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  const pad = text.startsWith('`') || text.endsWith('`') || text === '' ? ' ' : '';
  return `${fence}${pad}${text}${pad}${fence}`;
}
