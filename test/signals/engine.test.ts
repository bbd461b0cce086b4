import { expect } from 'chai';
import { AccessSignals, type SignalSink } from '../../nexus/signals/engine.js';
import type { Signal } from '../../nexus/signals/types.js';

/** The engine alone, with a clock of its own and a sink that keeps what it is told. */
function engine(opts: { maxPrincipals?: number; learnMs?: number } = {}) {
  let now = 1_000_000;
  const raised: Signal[] = [];
  // Nothing stored: the load answers at once (the real one answers a few ms later, off the request path).
  const sink: SignalSink = { raise: (s) => void raised.push(s), remember: () => {}, load: (p) => e.merge(p, undefined) };
  const e: AccessSignals = new AccessSignals({ learnMs: opts.learnMs ?? 1000, deniedBurst: 5, deniedWindowMs: 60_000, maxPrincipals: opts.maxPrincipals ?? 100, maxPathsPerPrincipal: 8 }, sink, () => now);
  return { e, raised, tick: (ms: number) => (now += ms) };
}

const read = (principal: string, path: string, address = '127.0.0.1', status = 200, tokenId?: string) => ({ port: 'mtls' as const, principal, address, action: 'read', path, status, tokenId });

describe('access signals: bounded memory', () => {
  it('a flood of distinct principals, addresses and tokens never holds more entries than the cap', () => {
    const { e } = engine({ maxPrincipals: 100 });
    for (let i = 0; i < 20_000; i++) {
      e.observe(read(`spiffe://nexus.local/flood/${i}`, `p/${i}`, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, i % 2 ? 403 : 200, `tok-${i}`));
      const s = e.sizes();
      expect(s.principals, `after ${i + 1}`).to.be.at.most(100);
      expect(s.addresses).to.be.at.most(100);
      expect(s.tokens).to.be.at.most(100);
    }
    expect(e.sizes().principals).to.equal(100);
  });

  it('one principal reading ever more paths keeps at most its per-principal cap', () => {
    const { e, tick } = engine();
    e.observe(read('spiffe://nexus.local/a', 'x/0'));
    tick(2000);
    for (let i = 1; i < 1000; i++) e.observe(read('spiffe://nexus.local/a', `x/${i}`));
    expect(e.sizes().paths).to.be.at.most(8);
  });

  it('after its window a principal is told of a new path once, and a known one never', () => {
    const { e, raised, tick } = engine();
    e.observe(read('spiffe://nexus.local/a', 'x/1'));
    tick(1500);
    e.observe(read('spiffe://nexus.local/a', 'x/1'));
    expect(raised).to.deep.equal([]);
    e.observe(read('spiffe://nexus.local/a', 'x/2'));
    e.observe(read('spiffe://nexus.local/a', 'x/2'));
    expect(raised.map((s) => s.signal)).to.deep.equal(['new_path']);
  });

  it('a path it wrote is a path it touched: reading it later is no new_path', () => {
    const { e, raised, tick } = engine();
    e.observe(read('spiffe://nexus.local/a', 'x/1'));
    tick(1500);
    e.observe({ ...read('spiffe://nexus.local/a', 'x/new'), action: 'write' });
    e.observe(read('spiffe://nexus.local/a', 'x/new'));
    expect(raised).to.deep.equal([]);
    e.observe({ ...read('spiffe://nexus.local/a', 'x/gone'), action: 'write', status: 403 });
    e.observe(read('spiffe://nexus.local/a', 'x/gone'));
    expect(raised.map((s) => [s.signal, s.path])).to.deep.equal([['new_path', 'x/gone']]);
  });
});

/**
 * A second replica's engine whose stored baseline comes back only when the
 * test says, read from a database that also holds whatever this engine asked
 * to remember meanwhile (the real store writes its queued batch, then reads
 * the baselines it was asked for, in one flush).
 */
function replica(stored: { firstSeen: number; peak: number; paths: string[] } | null) {
  let now = (stored?.firstSeen ?? 1_000_000) + 1500;
  const raised: Signal[] = [];
  const db = { firstSeen: now, peak: 0, ...stored, paths: [...(stored?.paths ?? [])] };
  const pending: string[] = [];
  const sink: SignalSink = {
    raise: (s) => void raised.push(s),
    remember: (_p, _firstSeen, _peak, path) => {
      if (path !== undefined && !db.paths.includes(path)) db.paths.push(path);
    },
    load: (p) => void pending.push(p),
  };
  const e = new AccessSignals({ learnMs: 1000, deniedBurst: 5, deniedWindowMs: 60_000, maxPrincipals: 100, maxPathsPerPrincipal: 8 }, sink, () => now);
  const arrive = () => {
    for (const p of pending.splice(0)) e.merge(p, stored ? { ...db, paths: [...db.paths] } : undefined);
  };
  return { e, raised, db, arrive, tick: (ms: number) => (now += ms) };
}

describe('access signals: reads seen before the stored baseline arrives', () => {
  it('a path first read while the baseline was on its way is a new_path once it arrives, even if this replica wrote its batch first', () => {
    const r = replica({ firstSeen: 1_000_000, peak: 1, paths: ['x/1'] });
    r.e.observe(read('spiffe://nexus.local/a', 'x/1'));
    r.e.observe(read('spiffe://nexus.local/a', 'x/2'));
    r.arrive();
    expect(r.raised.map((s) => [s.signal, s.path])).to.deep.equal([['new_path', 'x/2']]);
    // Judged, then learned: the other replicas know it from now on.
    expect(r.db.paths).to.deep.equal(['x/1', 'x/2']);
    r.e.observe(read('spiffe://nexus.local/a', 'x/2'));
    expect(r.raised).to.have.length(1);
  });

  it('reads of a principal still learning when its baseline arrives are learned, not judged', () => {
    const r = replica({ firstSeen: 1_000_000, peak: 1, paths: ['x/1'] });
    r.tick(-1000);
    r.e.observe(read('spiffe://nexus.local/a', 'x/2'));
    r.arrive();
    expect(r.raised).to.deep.equal([]);
    expect(r.db.paths).to.deep.equal(['x/1', 'x/2']);
  });

  it('reads of a principal no replica has stored are learned when the empty answer arrives', () => {
    const r = replica(null);
    r.e.observe(read('spiffe://nexus.local/a', 'x/1'));
    expect(r.db.paths).to.deep.equal([]);
    r.arrive();
    expect(r.raised).to.deep.equal([]);
    expect(r.db.paths).to.deep.equal(['x/1']);
  });
});
