// Finds the external programs that source files call, so the list in test/programs.ts can be
// checked against the code instead of kept by memory. Two readers:
// - TypeScript: the literal program name given to spawn/spawnSync/execFile/execFileSync/
//   runCommand/runChecked;
// - POSIX sh (lib/runtime, test/*.sh): the word in command position of every simple command,
//   after assignments and wrappers such as `exec`, `timeout 5` or `nice -n 19`.
// The sh reader is a scanner, not a parser: it errs towards reporting a word, and a word it
// wrongly reports is named in the failure so it can be read and explained.

/** Programs spawned with a literal name from TypeScript source. */
export function programsInTypeScript(source: string): string[] {
  const found = new Set<string>();
  const call = /\b(?:spawn|spawnSync|execFile|execFileSync|runCommand|runChecked)\(\s*['"`]([^'"`$]+)['"`]/g;
  for (const match of source.matchAll(call)) found.add(match[1]!.replace(/^.*\//, ''));
  return [...found].sort();
}

/** dash's builtins and the shell's reserved words: never a program. */
const SHELL_WORDS = new Set(
  (
    '! { } [ [[ ]] . : alias bg break case cd command continue do done echo elif else esac eval exec exit export false fc fg fi for ' +
    'getopts hash if in jobs kill local printf pwd read readonly return set shift test then times trap true type ulimit umask ' +
    'unalias unset until wait while'
  ).split(' '),
);

/** Wrappers whose operand is itself a command: the word after their options is a program too. */
const WRAPPERS: Record<string, number> = {
  // wrapper: how many non-option operands come before the command
  exec: 0,
  command: 0,
  nice: 0,
  ionice: 0,
  nohup: 0,
  env: 0,
  timeout: 1,
  flock: 1,
};

/**
 * Keeps only the code of a script: comments, quoted text, parameter expansions (`${x:-...}`) and
 * arithmetic are blanked, while command substitutions inside them stay code. Lines are kept.
 */
function codeOnly(text: string): string {
  type Context = 'code' | 'substitution' | 'double' | 'parameter' | 'arithmetic';
  const stack: Context[] = ['code'];
  let depth = 0; // parentheses open inside the innermost arithmetic
  let out = '';
  const blank = (c: string) => (c === '\n' ? '\n' : ' ');
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    const next = text[i + 1];
    const top = stack[stack.length - 1]!;
    const code = top === 'code' || top === 'substitution';
    if (c === '\\') {
      out += code ? ' ' : '  ';
      i++;
      continue;
    }
    if (c === '$' && next === '(' && text[i + 2] === '(') {
      stack.push('arithmetic');
      depth = 0;
      out += '   ';
      i += 2;
      continue;
    }
    if (c === '$' && next === '(') {
      stack.push('substitution');
      out += '$(';
      i++;
      continue;
    }
    if (c === '`') {
      if (top === 'substitution' && stack.includes('substitution')) stack.pop();
      else stack.push('substitution');
      out += '`';
      continue;
    }
    if (top === 'arithmetic') {
      if (c === '(') depth++;
      else if (c === ')' && depth > 0) depth--;
      else if (c === ')' && next === ')') {
        stack.pop();
        i++;
        out += '  ';
        continue;
      }
      out += blank(c);
      continue;
    }
    if (top === 'double') {
      if (c === '"') stack.pop();
      else if (c === '$' && next === '{') {
        stack.push('parameter');
        i++;
        out += ' ';
      }
      out += blank(c);
      continue;
    }
    if (top === 'parameter') {
      if (c === '}') stack.pop();
      out += blank(c);
      continue;
    }
    // code or substitution
    if (c === ')' && top === 'substitution') {
      stack.pop();
      out += ')';
      continue;
    }
    if (c === "'") {
      const close = text.indexOf("'", i + 1);
      const quoted = text.slice(i, close < 0 ? text.length : close + 1);
      out += quoted.replace(/[^\n]/g, ' ');
      i += quoted.length - 1;
      continue;
    }
    if (c === '"') {
      stack.push('double');
      out += ' ';
      continue;
    }
    if (c === '$' && next === '{') {
      stack.push('parameter');
      out += '  ';
      i++;
      continue;
    }
    if (c === '#' && (i === 0 || /[\s;(|&]/.test(text[i - 1]!))) {
      while (i + 1 < text.length && text[i + 1] !== '\n') i++;
      continue;
    }
    out += c;
  }
  return out;
}

/** Functions the script defines itself: calling them is not calling a program. */
function definedFunctions(text: string): Set<string> {
  return new Set([...text.matchAll(/^\s*([A-Za-z_][\w-]*)\s*\(\)/gm)].map((m) => m[1]!));
}

/** Programs a POSIX sh script calls. */
export function programsInShell(script: string): string[] {
  const functions = definedFunctions(script);
  const found = new Set<string>();
  // here-documents are data
  const body = codeOnly(script.replace(/<<-?\s*'?(\w+)'?([^\n]*)\n[\s\S]*?\n\s*\1\s*(?=\n|$)/g, '$2\n'));
  // Case patterns (`a|b)` at the start of a branch) are not commands.
  const segments = body
    .replace(/\bcase\s+\S+\s+in\b/g, '\n')
    .replace(/^\s*[^\s()]+(?:\s*\|\s*[^\s()]+)*\)(?!\))/gm, ' ')
    .split(/\n|;;?|&&|\|\||\||&|\$\(|`|\(|\)|\{|\}|\bthen\b|\bdo\b|\belse\b|\belif\b|\bif\b|\bwhile\b|\buntil\b|!/);
  for (const segment of segments) {
    const words = segment.trim().split(/\s+/).filter(Boolean);
    let i = 0;
    // Leading assignments and redirections do not name a command.
    while (i < words.length && (/^[A-Za-z_]\w*=/.test(words[i]!) || /^\d*[<>]/.test(words[i]!))) i++;
    while (i < words.length) {
      const word = words[i]!;
      if (!/^[a-z][a-z0-9_.+-]*$/.test(word) || SHELL_WORDS.has(word) && !(word in WRAPPERS) || functions.has(word)) break;
      if (word === 'command' && words[i + 1] === '-v') break;
      if (!SHELL_WORDS.has(word)) found.add(word);
      if (!(word in WRAPPERS)) break;
      // skip the wrapper's options and leading operands, then read the wrapped command
      i++;
      while (i < words.length && (words[i]!.startsWith('-') || /^[A-Za-z_]\w*=/.test(words[i]!))) {
        i += /^-(n|c|w|s|k)$/.test(words[i]!) ? 2 : 1;
      }
      i += WRAPPERS[word]!;
    }
  }
  return [...found].sort();
}
