// NEXUS_CI_TRACE=1: where a CI client's milliseconds go, one stderr line per
// step, each stamped from the process's start (performance.now() counts from
// Node's time origin, before the bundle is even read). Off, it costs one
// environment lookup: the bench and a job pay nothing for it.
const on = process.env.NEXUS_CI_TRACE === '1';
let last = 0;

/** Writes `nexus-ci trace: <ms since start> (+<ms since the last mark>) <what>` to stderr when tracing. */
export function trace(what: string): void {
  if (!on) return;
  const now = performance.now();
  process.stderr.write(`nexus-ci trace: ${now.toFixed(1)} ms (+${(now - last).toFixed(1)}) ${what}\n`);
  last = now;
}

export const tracing = on;
