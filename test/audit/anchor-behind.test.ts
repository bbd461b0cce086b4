import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { WriteBehindAnchor } from '../../nexus/audit/anchor-behind.js';
import type { ChainHead } from '../../nexus/storage/audit-repo.js';
import type { AuditAnchorsStore } from '../../nexus/storage/storage.js';

const head = (count: number): ChainHead => ({ generation: 1, count, mac: String(count).padStart(64, '0'), kcv: 'k' });

/** A store whose writes take `ms` each, recording what was written. */
function slowStore(ms: number): AuditAnchorsStore & { writes: Array<[string, number]>; stored: Map<string, ChainHead> } {
  const writes: Array<[string, number]> = [];
  const stored = new Map<string, ChainHead>();
  return {
    writes,
    stored,
    all: async () => new Map(stored),
    set: async (chain, h) => {
      await sleep(ms);
      writes.push([chain, h.count]);
      stored.set(chain, h);
    },
  };
}

describe('the write-behind audit anchor (replicas on PostgreSQL)', () => {
  it('writes at most once an interval whatever the rate of batches, the latest head always last', async () => {
    const store = slowStore(2);
    const anchor = new WriteBehindAnchor(await store.all(), store, (err) => {
      throw err;
    }, 100);
    // 300 batches over about 300 ms: one write each before, now one an interval.
    for (let i = 1; i <= 300; i++) {
      anchor.set('server@a', head(i));
      expect(anchor.get('server@a')!.count, 'counted in memory at once').to.equal(i);
      if (i % 10 === 0) await sleep(10);
    }
    await sleep(150);
    expect(store.writes.length).to.be.within(2, 6);
    expect(store.writes.at(-1)).to.deep.equal(['server@a', 300]);
  });

  it('a stop writes the last head at once, without waiting out the interval', async () => {
    const store = slowStore(0);
    // An hour between writes: a drain that waited it out would never end within the test's timeout.
    const anchor = new WriteBehindAnchor(new Map(), store, (err) => {
      throw err;
    }, 3_600_000);
    anchor.set('server@a', head(1));
    await sleep(5);
    anchor.set('server@a', head(2));
    await anchor.drain();
    expect(store.writes).to.deep.equal([['server@a', 1], ['server@a', 2]]);
  });

  it('a write that fails is reported and the next head is written all the same', async () => {
    const errors: unknown[] = [];
    let fail = true;
    const stored = new Map<string, ChainHead>();
    const anchor = new WriteBehindAnchor(new Map(), {
      all: async () => stored,
      set: async (chain, h) => {
        if (fail) {
          fail = false;
          throw new Error('connection terminated');
        }
        stored.set(chain, h);
      },
    }, (err) => errors.push(err), 10);
    anchor.set('c', head(1));
    await sleep(5);
    anchor.set('c', head(2));
    await anchor.drain();
    expect(errors).to.have.length(1);
    expect(stored.get('c')!.count).to.equal(2);
  });
});
