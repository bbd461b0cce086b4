import * as core from '@actions/core';
import { DEFAULT_RETRY } from './retry.js';

/** An integer input from `min` to `max`; empty means the default. */
function bounded(input: string, min: number, max: number, dflt: number): number {
  const raw = core.getInput(input);
  if (raw === '') return dflt;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min && n <= max)) throw new Error(`input ${input} must be an integer from ${min} to ${max}`);
  return n;
}

/** The action's `max-tries` and `max-retry-s` inputs (main and post step alike). */
export function retryInputs(): { maxTries: number; maxWaitS: number } {
  return { maxTries: bounded('max-tries', 1, 10, DEFAULT_RETRY.maxTries), maxWaitS: bounded('max-retry-s', 0, 600, DEFAULT_RETRY.maxWaitS) };
}
