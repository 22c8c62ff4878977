// A member's slot of the maintenance window in a reboot set: the window split evenly in the order
// of the set, in whole seconds. A member may begin its reboot only in the first half of its slot,
// so the next member (whose slot starts after that half has passed) finds it already down, or back
// and serving, never about to go down. See lib/runtime/reboot.sh.

/** Shortest slot: its first half must see at least two ticks of the five-minute reboot timer. */
export const MIN_SLOT_SECONDS = 20 * 60;

export interface RebootSlot {
  /** Seconds after the window opens when the slot starts. */
  readonly startSeconds: number;
  /** Seconds after the window opens after which the member no longer begins a reboot. */
  readonly beginBySeconds: number;
  /** Seconds after the window opens when the next member's slot starts. */
  readonly endSeconds: number;
}

/** The slot of member `index` (0-based) of `count` in a window of `durationSeconds`. */
export function rebootSlot(durationSeconds: number, index: number, count: number): RebootSlot {
  if (!(Number.isInteger(index) && Number.isInteger(count) && index >= 0 && index < count)) throw new Error(`no slot ${index} of ${count}`);
  const startSeconds = Math.floor((durationSeconds * index) / count);
  const endSeconds = Math.floor((durationSeconds * (index + 1)) / count);
  return { startSeconds, beginBySeconds: startSeconds + Math.floor((endSeconds - startSeconds) / 2), endSeconds };
}
