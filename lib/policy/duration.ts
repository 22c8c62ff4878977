// Durations in policies are strings such as "90s", "15m", "24h", "7d", "2w".

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 } as const;
const DURATION = /^(\d+(?:\.\d+)?)(s|m|h|d|w)$/;

/** Seconds in `text`, or undefined when it is not a duration. */
export function tryParseDuration(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  const m = DURATION.exec(text);
  if (!m) return undefined;
  const seconds = Number(m[1]) * UNIT_SECONDS[m[2] as keyof typeof UNIT_SECONDS];
  return Number.isInteger(seconds) && seconds > 0 ? seconds : undefined;
}

/** The shortest exact text for `seconds`, e.g. 5400 -> "90m", 86400 -> "1d". */
export function formatDuration(seconds: number): string {
  for (const [unit, size] of [['w', 604800], ['d', 86400], ['h', 3600], ['m', 60]] as const) {
    if (seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}
