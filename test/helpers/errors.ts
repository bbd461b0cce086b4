import { NexusError } from '../../nexus/errors.js';

/** The NexusError code `fn` fails with (sync or async); anything else is rethrown, success is an error. */
export async function codeOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof NexusError) return err.code;
    throw err;
  }
  throw new Error('expected an error');
}
