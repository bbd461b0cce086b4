import libsodium from 'libsodium-wrappers';

let isReady = false;

/** Await once at start-up (server, scripts, tests) before any crypto call. */
export async function initSodium(): Promise<void> {
  await libsodium.ready;
  isReady = true;
}

export function sodium(): typeof libsodium {
  if (!isReady) throw new Error('initSodium() must be awaited before using crypto');
  return libsodium;
}
