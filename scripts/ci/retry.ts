/**
 * When and how long nexus-ci and the action wait before trying a request
 * again: a 429 or 503 (the server said "later"), a connection that failed
 * before any answer, and, once, a token the server's clock says is not yet
 * valid. Capped exponential back-off with jitter, a server's Retry-After
 * honoured; every request gets at most `maxTries` tries and all of its waits
 * together at most `maxWaitS` seconds.
 */
export interface RetryPolicy {
  maxTries: number;
  maxWaitS: number;
  /** One line per retry (never a token or value). */
  log: (line: string) => void;
  /** Test seams: both default to the real ones. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

export const DEFAULT_RETRY = { maxTries: 3, maxWaitS: 30 } as const;

/** Back-off before retry n (1, 2, ...): 0.5 s doubling, capped at 8 s, with up to half of it as jitter (runners that failed together do not retry together). */
export function backoffS(n: number, random: () => number = Math.random): number {
  const base = Math.min(8, 0.5 * 2 ** (n - 1));
  return base / 2 + (base / 2) * random();
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date); undefined when absent or unreadable. */
export function retryAfterS(header: unknown, now = Date.now()): number | undefined {
  if (typeof header !== 'string' || !header.trim()) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim());
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, (at - now) / 1000);
}

/** Node's codes for a connection that failed before any answer came (worth another try); a TLS or trust failure is not among them. */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED']);

export function isConnectionFailure(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && CONNECTION_CODES.has(code);
}

/** What one try came to, as the retry loop needs it. */
export type Outcome<T> =
  | { done: T }
  | { retry: 'later' | 'skew'; why: string; afterS?: number; last: () => never };

/**
 * Runs `attempt` until it is done, or until the tries or the wait budget run
 * out (then the last failure is thrown as `attempt` would have thrown it).
 * A clock-skew refusal is retried once, after the server's Retry-After, and
 * does not count as a try.
 */
export async function withRetries<T>(what: string, policy: RetryPolicy, attempt: () => Promise<Outcome<T>>): Promise<T> {
  const sleep = policy.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const random = policy.random ?? Math.random;
  let tries = 0;
  let skewed = false;
  let waited = 0;
  for (;;) {
    const o = await attempt();
    if ('done' in o) return o.done;
    const skew = o.retry === 'skew';
    if (skew) {
      if (skewed) o.last();
      skewed = true;
    } else if (++tries >= policy.maxTries) o.last();
    // A Retry-After is a floor: a little jitter on top spreads runners that were told the same.
    const wait = o.afterS !== undefined ? o.afterS + 0.25 * random() : backoffS(tries, random);
    if (waited + wait > policy.maxWaitS) o.last();
    waited += wait;
    policy.log(`${what}: ${o.why}; retrying in ${wait.toFixed(1)} s (${skew ? 'clock skew, once' : `try ${tries + 1} of ${policy.maxTries}`})`);
    await sleep(wait * 1000);
  }
}
