import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { ChainWriter, type ChainWriterOptions } from '../../nexus/audit/chain.js';
import { AuditKeys } from '../../nexus/audit/keys.js';
import { AuditTrail } from '../../nexus/audit/trail.js';
import { verifyChain } from '../../nexus/audit/verify.js';
import type { Core } from '../../nexus/core.js';
import { silentLogger } from '../../nexus/log.js';
import { AuditAnchorRepo, AuditKeysRepo } from '../../nexus/storage/audit-repo.js';
import { loadConfig } from '../../nexus/config/index.js';
import { openTestCore, runBin, tempDir, testEnv } from '../helpers/env.js';
import { spawnServer } from '../helpers/process.js';

const rec = (i: number) => ({ time: new Date().toISOString(), port: 'mtls', action: 'read', path: `app/s${i}`, decision: 'allow', status: 200 });

/** Replaces fs[name] for the duration of fn. */
async function patched<K extends 'readFileSync' | 'readSync' | 'writeSync' | 'fsyncSync' | 'ftruncateSync'>(name: K, impl: (orig: (typeof fs)[K]) => (typeof fs)[K], fn: () => Promise<void> | void): Promise<void> {
  const orig = fs[name];
  (fs as Record<K, unknown>)[name] = impl(orig.bind(fs) as (typeof fs)[K]);
  try {
    await fn();
  } finally {
    (fs as Record<K, unknown>)[name] = orig;
  }
}

describe('audit trail writer', function () {
  this.timeout(120_000);
  let dir: string;
  let core: Core;
  let keys: AuditKeys;
  let anchor: AuditAnchorRepo;
  const trailFile = () => path.join(dir, 'trail.jsonl');
  const writer = (opts: Partial<ChainWriterOptions> = {}) => new ChainWriter(trailFile(), 'test', keys, anchor, { maxBytes: 64 * 1024 * 1024, fsync: false, maxFiles: null, ...opts });
  const verify = () => verifyChain(trailFile(), keys, anchor.get('test'));

  beforeEach(async () => {
    dir = tempDir();
    core = await openTestCore(dir);
    keys = new AuditKeys(core.rootKey, new AuditKeysRepo(core.db).all());
    anchor = new AuditAnchorRepo(core.db);
  });
  afterEach(() => core.close());

  it('rotation reads no whole file: only a bounded tail, whatever the file size', async () => {
    const w = writer({ maxBytes: 1024 * 1024, maxFiles: 1 });
    w.resume();
    let i = 0;
    while (!fs.existsSync(`${trailFile()}.1`)) w.append(Array.from({ length: 200 }, () => rec(i++)));
    let read = 0;
    const count = (orig: typeof fs.readSync) => ((...args: Parameters<typeof fs.readSync>) => {
      const n = orig(...args);
      read += n;
      return n;
    }) as typeof fs.readSync;
    await patched('readSync', count, () =>
      patched('readFileSync', (orig) => ((...a: Parameters<typeof fs.readFileSync>) => {
        const out = orig(...a);
        read += out.length;
        return out;
      }) as typeof fs.readFileSync, () => {
        // Two more rotations (and one retention deletion) of 1 MiB files.
        while (!fs.existsSync(`${trailFile()}.3`)) w.append(Array.from({ length: 200 }, () => rec(i++)));
      }),
    );
    w.close();
    expect(read, 'bytes read while rotating').to.be.below(128 * 1024);
    expect(verify().problems).to.deep.equal([]);
  });

  it('a short write is completed; a write that makes no progress is a failure, never ignored', async () => {
    const trail = new AuditTrail({ file: trailFile(), chain: 'test', rootKey: core.rootKey, keys, anchor, log: silentLogger() });
    let calls = 0;
    await patched('writeSync', (orig) => ((fd: number, buf: Buffer, off?: number, len?: number) => {
      calls++;
      // The first call writes 7 bytes only, as a full disk or a signal may make it.
      return calls === 1 ? orig(fd, buf, off ?? 0, 7) : orig(fd, buf, off, len);
    }) as typeof fs.writeSync, async () => {
      expect(await trail.record({ port: 'mtls', action: 'read', decision: 'allow', status: 200 })).to.equal(true);
    });
    expect(calls).to.be.greaterThan(1);
    await patched('writeSync', () => (() => 0) as typeof fs.writeSync, async () => {
      expect(await trail.record({ port: 'mtls', action: 'read', decision: 'allow', status: 200 })).to.equal(false);
      expect(trail.writable()).to.equal(false);
    });
    expect(await trail.record({ port: 'mtls', action: 'read', decision: 'allow', status: 200 })).to.equal(true);
    trail.close();
    const r = verify();
    expect(r.problems).to.deep.equal([]);
    expect(r.records).to.equal(2);
  });

  it('a batch that fails part way (full disk, failed fsync, anchor that cannot move) is cut off the file before anything else is written', async () => {
    const w = writer({ fsync: true });
    w.resume();
    w.append([rec(0), rec(1)]);
    const size = () => fs.statSync(trailFile()).size;
    const good = size();
    const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    // The disk fills up part way through a batch: 20 bytes land, then nothing more fits.
    let calls = 0;
    await patched('writeSync', (orig) => ((fd: number, buf: Buffer, off: number) => {
      if (++calls === 1) return orig(fd, buf, off, 20);
      throw enospc();
    }) as typeof fs.writeSync, () => {
      expect(() => w.append([rec(2), rec(3)])).to.throw(/ENOSPC/);
    });
    expect(size(), 'after a torn write').to.equal(good);
    await patched('fsyncSync', () => (() => {
      throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
    }) as typeof fs.fsyncSync, () => {
      expect(() => w.append([rec(4)])).to.throw(/EIO/);
    });
    expect(size(), 'after a failed fsync').to.equal(good);
    // The anchor lives on the same full disk (SQLITE_FULL): the batch is in the file, but must not stay there.
    const set = anchor.set.bind(anchor);
    anchor.set = () => {
      throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    };
    try {
      expect(() => w.append([rec(5)])).to.throw(/disk is full/);
    } finally {
      anchor.set = set;
    }
    expect(size(), 'after the anchor could not move').to.equal(good);
    // The cut itself fails: the file stays torn until the next append cuts it back, before it writes.
    calls = 0;
    await patched('writeSync', (orig) => ((fd: number, buf: Buffer, off: number) => {
      if (++calls === 1) return orig(fd, buf, off, 30);
      throw enospc();
    }) as typeof fs.writeSync, () =>
      patched('ftruncateSync', () => (() => {
        throw Object.assign(new Error('EIO: i/o error, ftruncate'), { code: 'EIO' });
      }) as typeof fs.ftruncateSync, () => {
        expect(() => w.append([rec(6)])).to.throw(/ENOSPC/);
      }),
    );
    expect(size(), 'torn, the cut having failed').to.equal(good + 30);
    w.append([rec(7)]);
    w.append([rec(8)]);
    w.close();
    const r = verify();
    expect(r.problems).to.deep.equal([]);
    expect(r.records).to.equal(4);
    const paths = fs.readFileSync(trailFile(), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { path: string }).path);
    expect(paths).to.deep.equal(['app/s0', 'app/s1', 'app/s7', 'app/s8']);
    // And a writer started afterwards picks up where the anchor says, with no break.
    const again = writer();
    expect(again.resume()).to.equal(null);
    again.close();
  });

  it('at start, a torn last record after the anchored head (the process stopped during a write) is cut off; one that hides a cut still breaks the chain', () => {
    const w = writer();
    w.resume();
    for (let i = 0; i < 3; i++) w.append([rec(i)]);
    w.close();
    const whole = fs.readFileSync(trailFile(), 'utf8');
    fs.appendFileSync(trailFile(), '{"time":"2026-01-01T00:00:00.000Z","port":"mtls","act');
    expect(verify().problems).to.deep.equal(['trail.jsonl:4: a torn last record (a write that never completed; the next start cuts it off if the records before it match the anchor)']);
    const again = writer();
    expect(again.resume()).to.equal(null);
    expect(again.tornBytesCut).to.equal(53);
    expect(fs.readFileSync(trailFile(), 'utf8')).to.equal(whole);
    again.append([rec(3)]);
    again.close();
    expect(verify().problems).to.deep.equal([]);
    expect(verify().records).to.equal(4);
    // The last whole record removed, and a fragment put after the rest: that is a cut, and says so.
    const lines = fs.readFileSync(trailFile(), 'utf8').trim().split('\n');
    fs.writeFileSync(trailFile(), `${lines.slice(0, 3).join('\n')}\n${lines[3]!.slice(0, 30)}`);
    const third = writer();
    const broke = third.resume();
    third.close();
    expect(broke?.detail).to.match(/records 4 of generation 1 are missing \(cut\)/);
    expect(third.tornBytesCut).to.equal(0);
  });

  it('retention keeps NEXUS_AUDIT_MAX_FILES rotated files, records each deletion, and the rest still verifies', async () => {
    const w = writer({ maxBytes: 1500, maxFiles: 2 });
    w.resume();
    for (let i = 0; i < 40; i++) w.append([rec(i)]);
    w.close();
    const rotated = fs.readdirSync(dir).filter((f) => /^trail\.jsonl\.\d+$/.test(f));
    expect(rotated).to.have.length(2);
    const all = [...rotated.sort().map((f) => path.join(dir, f)), trailFile()].flatMap((f) => fs.readFileSync(f, 'utf8').trim().split('\n')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const deletions = all.filter((x) => x.action === 'audit.retention');
    expect(deletions.length).to.be.greaterThan(0);
    // The last deletion names the file just before the oldest kept one, and where it ended.
    const oldestKept = Math.min(...rotated.map((f) => Number(f.split('.').pop())));
    expect(deletions.at(-1)!.deleted).to.equal(`trail.jsonl.${oldestKept - 1}`);
    expect(deletions.at(-1)!.through).to.have.keys('generation', 'count', 'mac', 'kcv');
    expect(verify().problems).to.deep.equal([]);
    expect(loadConfig(testEnv(dir, { NEXUS_AUDIT_MAX_FILES: '5' })).auditMaxFiles).to.equal(5);
  });

  it('NEXUS_AUDIT_FSYNC=batch fsyncs each batch before it counts as written; the default does not', async () => {
    expect(loadConfig(testEnv(dir)).auditFsync).to.equal('off');
    expect(loadConfig(testEnv(dir, { NEXUS_AUDIT_FSYNC: 'batch' })).auditFsync).to.equal('batch');
    for (const [fsync, expected] of [[false, 0], [true, 3]] as const) {
      const w = writer({ fsync });
      w.resume();
      let syncs = 0;
      await patched('fsyncSync', (orig) => ((fd: number) => {
        syncs++;
        orig(fd);
      }) as typeof fs.fsyncSync, () => {
        for (let i = 0; i < 3; i++) w.append([rec(i), rec(i)]);
      });
      w.close();
      expect(syncs, `fsync=${fsync}`).to.equal(expected);
    }
  });

  it('verify reports a real fork (two writers from one head) as tampering, and keeps checking after it', async () => {
    const a = writer();
    a.resume();
    for (let i = 0; i < 3; i++) a.append([rec(i)]);
    a.close();
    // Two writers pick up the same head, as two processes appending to one file would.
    const b = writer();
    const c = writer();
    b.resume();
    c.resume();
    b.append([rec(10)]);
    c.append([rec(20), rec(21)]);
    b.close();
    c.close();
    // And one more problem further on.
    const lines = fs.readFileSync(trailFile(), 'utf8').trim().split('\n');
    lines[5] = lines[5]!.replace('app/s21', 'app/sXX');
    fs.writeFileSync(trailFile(), `${lines.join('\n')}\n`);
    const r = verify();
    expect(r.ok).to.equal(false);
    expect(r.problems[0]).to.match(/^trail\.jsonl:5: fork: chains from the same record as trail\.jsonl:4/);
    expect(r.problems.some((p) => /^trail\.jsonl:6: record was altered/.test(p)), r.problems.join('\n')).to.equal(true);
  });

  it('admin scripts beside a running server take turns on their own chain; the trail verifies', async () => {
    await core.close();
    const srvDir = tempDir();
    const s = await spawnServer(testEnv(srvDir));
    try {
      const runs = await Promise.all([1, 2, 3].map((n) => runBin('nexus-backup', [path.join(srvDir, `b${n}.db`)], testEnv(srvDir))));
      for (const r of runs) expect(r.code, r.stderr).to.equal(0);
      const scripts = fs.readFileSync(path.join(srvDir, 'audit-scripts.jsonl'), 'utf8').trim().split('\n');
      expect(scripts).to.have.length(3);
      const serverTrail = path.join(srvDir, 'audit.jsonl');
      expect(fs.existsSync(serverTrail) ? fs.readFileSync(serverTrail, 'utf8') : '').to.not.include('nexus-backup');
    } finally {
      s.child.kill('SIGTERM');
      await s.exited;
    }
    const v = await runBin('nexus-audit', ['verify'], testEnv(srvDir));
    expect(v.code, v.stderr).to.equal(0);
    core = await openTestCore(dir);
  });
});
