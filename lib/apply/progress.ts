// Progress lines for people watching a rollout: stderr, one line per wave and per host step, colour
// only on a terminal and never when NO_COLOR is set (https://no-color.org).

export type Tone = 'plain' | 'ok' | 'warn' | 'fail' | 'heading';

export type Progress = (line: string, tone?: Tone) => void;

const COLOURS: Record<Tone, string> = { plain: '', ok: '\u001b[32m', warn: '\u001b[33m', fail: '\u001b[31m', heading: '\u001b[1m' };

export function useColour(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === '');
}

/** Writes progress lines to `stream` (normally stderr). */
export function streamProgress(stream: NodeJS.WritableStream & { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): Progress {
  const colour = useColour(stream, env);
  return (line, tone = 'plain') => {
    stream.write(colour && tone !== 'plain' ? `${COLOURS[tone]}${line}\u001b[0m\n` : `${line}\n`);
  };
}

/** "1.2s" / "350ms": durations as people read them. */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`;
}
