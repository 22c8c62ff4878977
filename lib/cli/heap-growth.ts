// How far V8 lets the heap grow beyond the data it found alive at its last full collection.
//
// Left to itself, V8 on a machine with plenty of memory grows the heap up to four times the live
// data before collecting again. Planning 10,000 hosts keeps about 320 MiB alive but produces
// gigabytes of short-lived strings (each host's files, hashes and JSON), so the process peaked at
// 1,335 MiB, most of it garbage not yet collected: enough to fail on a small CI runner. Growing by
// at most the live data again (a factor of 2) kept the peak at 850 to 950 MiB, for more frequent
// collections (test/bench/plan-scale.ts). This is a growth rate, not a cap: a fleet whose live
// data is larger still gets the memory it needs.

import { setFlagsFromString } from 'node:v8';

/** New heap limit after a full collection = live data x (1 + this / 100). */
export const HEAP_GROWING_PERCENT = 100;

/** For this process from now on (V8 reads the flag at every full collection). */
export function limitHeapGrowth(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
