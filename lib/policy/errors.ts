// Policy errors name the file, the line and column (YAML), and the policy path of what is wrong.
// Validation collects every issue and fails once with all of them.

/** A path into the policy, e.g. ["hosts", "web1", "backups", "repository", "host"]. */
export type PolicyPath = readonly (string | number)[];

export interface SourceLocation {
  readonly line: number;
  readonly column: number;
}

/** Where a policy came from; YAML sources can map a policy path to a line and column. */
export interface PolicySource {
  readonly file: string;
  locate(path: PolicyPath): SourceLocation | undefined;
}

export interface PolicyIssue {
  readonly path: PolicyPath;
  readonly message: string;
}

/** "hosts.web1.backups" — the dotted form used in messages. */
export function formatPath(path: PolicyPath): string {
  if (path.length === 0) return '(fleet)';
  // A key that is not a plain name is quoted, so a newline in it cannot forge a line of output.
  const segment = (p: string | number) => (typeof p === 'number' ? `[${p}]` : /^[A-Za-z0-9_-]+$/.test(p) ? p : JSON.stringify(p));
  return path.map(segment).join('.').replace(/\.\[/g, '[');
}

export function formatIssue(issue: PolicyIssue, source?: PolicySource): string {
  const where = source?.locate(issue.path);
  const file = source ? (where ? `${source.file}:${where.line}:${where.column}` : source.file) : undefined;
  return `${file ? `${file}: ` : ''}${formatPath(issue.path)}: ${issue.message}`;
}

export class PolicyError extends Error {
  readonly issues: readonly PolicyIssue[];
  readonly source?: PolicySource;

  constructor(issues: readonly PolicyIssue[], source?: PolicySource) {
    const lines = issues.map((i) => formatIssue(i, source));
    super(issues.length === 1 ? lines[0] : `${issues.length} problems in the policy:\n${lines.map((l) => `  - ${l}`).join('\n')}`);
    this.name = 'PolicyError';
    this.issues = issues;
    this.source = source;
  }
}
