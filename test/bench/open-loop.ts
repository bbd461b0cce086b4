// An open-loop load generator: jobs start on a schedule fixed in advance
// (Poisson arrivals at a given rate), whether or not earlier jobs have
// finished, and each job's latency is counted from its SCHEDULED start. A
// closed loop (the next request only after the last answer) slows down with
// the server and so never sees the queue a stall builds: coordinated omission.
// This is how wrk2 and HdrHistogram measure; the percentiles come from an HDR
// histogram (hdr-histogram-js), not from a hand-rolled sort.
import { build } from 'hdr-histogram-js';

export type ErrorKind = 'reset' | '429' | '503' | 'other';

/** An HTTP answer a job did not expect; `kind` counts it by status. */
export class JobError extends Error {
  constructor(
    readonly status: number,
    body: string,
  ) {
    super(`HTTP ${status}: ${body.slice(0, 200)}`);
  }
}

/** Resets and refusals at the TCP/TLS level count together: the client saw no HTTP answer. */
export function kindOf(err: unknown): ErrorKind {
  if (err instanceof JobError) return err.status === 429 ? '429' : err.status === 503 ? '503' : 'other';
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNREFUSED' || code === 'ECONNABORTED' ? 'reset' : 'other';
}

export interface OpenLoopResult {
  rate: number;
  seconds: number;
  scheduled: number;
  completed: number;
  errors: Record<ErrorKind, number>;
  /** First error message of each kind, for the report. */
  examples: Partial<Record<ErrorKind, string>>;
  /** Latency from scheduled start to end of the job, ms, successful jobs only. */
  p50: number;
  p99: number;
  p999: number;
  max: number;
  /** Most jobs in flight at once. */
  peakInFlight: number;
  /**
   * How late the client itself started its latest-started job, ms: large
   * when the load generator, not the server, fell behind (the latency counts
   * it either way; this says whose it was).
   */
  launchLagMs: number;
}

/** Arrival offsets (ms) of a Poisson process at `rate`/s over `seconds`: exponential gaps, seeded so runs compare. */
export function poissonSchedule(rate: number, seconds: number, seed = 1): number[] {
  // mulberry32: a seeded uniform source (Math.random cannot be seeded).
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out: number[] = [];
  for (let t = 0; ; ) {
    t += (-Math.log(1 - uniform()) / rate) * 1000;
    if (t >= seconds * 1000) return out;
    out.push(t);
  }
}

/**
 * Runs `job(i)` at each scheduled instant of a Poisson process at `rate`
 * jobs/s for `seconds`, never waiting for earlier jobs, and resolves once
 * every job has ended.
 */
export async function openLoop(rate: number, seconds: number, job: (i: number) => Promise<void>, seed = 1): Promise<OpenLoopResult> {
  const schedule = poissonSchedule(rate, seconds, seed);
  // Microseconds, 1 µs to 10 min, 3 significant digits.
  const h = build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });
  const errors: Record<ErrorKind, number> = { reset: 0, '429': 0, '503': 0, other: 0 };
  const examples: Partial<Record<ErrorKind, string>> = {};
  let completed = 0;
  let inFlight = 0;
  let peakInFlight = 0;
  let launchLagMs = 0;
  const running: Promise<void>[] = [];
  const t0 = performance.now();
  const launch = (i: number) => {
    const due = t0 + schedule[i]!;
    launchLagMs = Math.max(launchLagMs, performance.now() - due);
    inFlight++;
    peakInFlight = Math.max(peakInFlight, inFlight);
    running.push(
      job(i).then(
        () => {
          inFlight--;
          completed++;
          // From the scheduled start: a job the client itself started late still counts its wait.
          h.recordValue(Math.max(1, Math.round((performance.now() - due) * 1000)));
        },
        (err: unknown) => {
          inFlight--;
          const k = kindOf(err);
          errors[k]++;
          examples[k] ??= err instanceof Error ? `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`.trim() : String(err);
        },
      ),
    );
  };
  await new Promise<void>((resolve) => {
    let next = 0;
    const tick = () => {
      const now = performance.now() - t0;
      while (next < schedule.length && schedule[next]! <= now) launch(next++);
      if (next >= schedule.length) return resolve();
      setTimeout(tick, Math.max(0, schedule[next]! - now));
    };
    tick();
  });
  await Promise.all(running);
  const ms = (p: number) => (h.totalCount === 0 ? NaN : h.getValueAtPercentile(p) / 1000);
  const result: OpenLoopResult = {
    rate,
    seconds,
    scheduled: schedule.length,
    completed,
    errors,
    examples,
    p50: ms(50),
    p99: ms(99),
    p999: ms(99.9),
    max: h.totalCount === 0 ? NaN : h.maxValue / 1000,
    peakInFlight,
    launchLagMs,
  };
  h.destroy();
  return result;
}
