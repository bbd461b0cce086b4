import { expect } from 'chai';
import { backoffS, retryAfterS, withRetries, type Outcome } from '../../scripts/ci/retry.js';

/** The message a promise rejects with (fails the test if it resolves). */
async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a rejection');
}

describe('CI clients: when a request is tried again', () => {
  const policy = (lines: string[], slept: number[], maxTries = 3, maxWaitS = 30) => ({ maxTries, maxWaitS, log: (l: string) => lines.push(l), sleep: async (ms: number) => void slept.push(ms), random: () => 0.5 });
  const failing = (retry: 'later' | 'skew', afterS?: number): Outcome<string> => ({
    retry,
    why: 'rate limited (429)',
    ...(afterS !== undefined ? { afterS } : {}),
    last: () => {
      throw new Error('gave up');
    },
  });

  it('back-off: 0.5 s doubling, capped at 8 s, jitter within the upper half', () => {
    expect([1, 2, 3, 4, 5, 6, 9].map((n) => backoffS(n, () => 1))).to.deep.equal([0.5, 1, 2, 4, 8, 8, 8]);
    expect(backoffS(3, () => 0)).to.equal(1);
  });

  it('Retry-After as seconds or an HTTP date', () => {
    expect(retryAfterS('3')).to.equal(3);
    expect(retryAfterS(new Date(Date.now() + 5000).toUTCString())).to.be.within(3.9, 5);
    expect(retryAfterS(undefined)).to.equal(undefined);
    expect(retryAfterS('soon')).to.equal(undefined);
  });

  it('at most maxTries tries, one log line per retry, Retry-After honoured as a floor', async () => {
    const lines: string[] = [];
    const slept: number[] = [];
    let n = 0;
    expect(await failure(withRetries('GET /x', policy(lines, slept), async () => (n++, failing('later', 2))))).to.equal('gave up');
    expect(n).to.equal(3);
    expect(lines).to.deep.equal(['GET /x: rate limited (429); retrying in 2.1 s (try 2 of 3)', 'GET /x: rate limited (429); retrying in 2.1 s (try 3 of 3)']);
    expect(slept).to.deep.equal([2125, 2125]);
  });

  it('stops when the waits would pass maxWaitS', async () => {
    const lines: string[] = [];
    let n = 0;
    expect(await failure(withRetries('GET /x', policy(lines, [], 10, 5), async () => (n++, failing('later', 3))))).to.equal('gave up');
    expect(n).to.equal(2);
  });

  it('a clock-skew refusal: once, not counted as a try', async () => {
    const lines: string[] = [];
    const seq: Array<Outcome<string>> = [failing('later'), failing('skew', 2), failing('later'), { done: 'ok' }];
    expect(await withRetries('POST /t', policy(lines, []), async () => seq.shift()!)).to.equal('ok');
    expect(lines).to.have.length(3);
    expect(lines[1]).to.match(/clock skew, once/);
    let skews = 0;
    expect(await failure(withRetries('POST /t', policy([], []), async () => (skews++, failing('skew', 1))))).to.equal('gave up');
    expect(skews).to.equal(2);
  });
});
