import { expect } from 'chai';
import type { Core } from '../../nexus/core.js';
import { NexusError } from '../../nexus/errors.js';
import { silentLogger } from '../../nexus/log.js';
import { SecretsService } from '../../nexus/secrets/service.js';
import { ListCursors } from '../../nexus/secrets/cursor.js';
import { CiphertextRowCache } from '../../nexus/storage/row-cache.js';
import type { Storage } from '../../nexus/storage/storage.js';
import { openTestCore, tempDir } from '../helpers/env.js';

async function codeOf(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof NexusError) return err.code;
    throw err;
  }
  return 'ok';
}

describe('ciphertext row cache', function () {
  this.timeout(30_000);
  let core: Core;
  let lookups = 0;
  let cache: CiphertextRowCache;
  let storage: Storage;
  let secrets: SecretsService;

  beforeEach(async () => {
    core = await openTestCore(tempDir());
    // Counts the lookups that reach the database, under a cache of our own.
    const inner = core.storage;
    const counting = new Proxy(inner, {
      get: (t, k) =>
        k === 'secrets'
          ? new Proxy(t.secrets, { get: (s, m) => (m === 'lookup' ? (p: string, v: number | null) => (lookups++, s.lookup(p, v)) : Reflect.get(s, m, s)) })
          : Reflect.get(t, k, t),
    });
    cache = new CiphertextRowCache();
    storage = cache.wrap(counting as Storage);
    secrets = new SecretsService(storage, core.keyring, silentLogger(), { maxVersions: 5, cursors: new ListCursors(core.rootKey.bytes) });
    lookups = 0;
  });
  afterEach(() => core.close());

  it('serves repeated reads from memory, decrypting each time, and keeps no plaintext', async () => {
    await secrets.put('app/db', { pass: 'PLAIN-row-cache' });
    for (let i = 0; i < 5; i++) expect((await secrets.get('app/db')).data).to.deep.equal({ pass: 'PLAIN-row-cache' });
    expect(lookups).to.equal(1);
    const kept = JSON.stringify(cache, (_k, v: unknown) => (v instanceof Map ? [...v.entries()] : v));
    expect(kept).to.not.include('PLAIN-row-cache');
  });

  it('a write, a delete, an undelete and a destroy are seen on the next read', async () => {
    await secrets.put('app/db', { v: '1' });
    await secrets.get('app/db');
    await secrets.put('app/db', { v: '2' });
    expect((await secrets.get('app/db')).data).to.deep.equal({ v: '2' });
    await secrets.get('app/db', 1);
    await secrets.delete('app/db');
    expect(await codeOf(() => secrets.get('app/db'))).to.equal('not_found');
    await secrets.undelete('app/db', [2]);
    expect((await secrets.get('app/db')).data).to.deep.equal({ v: '2' });
    await secrets.destroy('app/db', [1]);
    expect(await codeOf(() => secrets.get('app/db', 1))).to.equal('not_found');
  });

  it('a purge of the path is seen on the next read', async () => {
    await secrets.put('app/db', { v: '1' });
    await secrets.get('app/db');
    await secrets.get('app/db', 1);
    await secrets.purge('app/db');
    expect(await codeOf(() => secrets.get('app/db'))).to.equal('not_found');
    expect(await codeOf(() => secrets.get('app/db', 1))).to.equal('not_found');
  });

  it('a ciphertext replaced by key rotation is read anew', async () => {
    await secrets.put('app/db', { v: '1' });
    const before = await storage.secrets.lookup('app/db', null);
    await storage.tx(async (r) => r.secrets.replaceCiphertext('app/db', 1, before!.row!.key_id!, Buffer.from('n'.repeat(24)), Buffer.from('not-the-old-ciphertext')));
    const after = await storage.secrets.lookup('app/db', null);
    expect(after!.row!.ciphertext!.toString()).to.equal('not-the-old-ciphertext');
  });

  it('keeps nothing read while a write transaction is open, and drops it if the transaction rolls back', async () => {
    await secrets.put('app/db', { v: '1' });
    await storage
      .tx(async (r) => {
        await r.secrets.softDelete('app/db', 1, new Date().toISOString());
        expect(await storage.secrets.lookup('app/db', null)).to.have.nested.property('row.deleted_at').that.is.a('string');
        throw new Error('roll back');
      })
      .catch(() => undefined);
    expect((await secrets.get('app/db')).data).to.deep.equal({ v: '1' });
  });

  it('a lookup that overlapped an invalidation is not kept (the hook other replicas call)', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let reads = 0;
    const read = async () => {
      reads++;
      await gate;
      return { current: 1, row: null };
    };
    const pending = cache.lookup('x', null, read);
    cache.invalidate('x');
    release();
    await pending;
    await cache.lookup('x', null, read);
    expect(reads).to.equal(2);
    await cache.lookup('x', null, read);
    expect(reads).to.equal(2);
    cache.invalidate();
    await cache.lookup('x', null, read);
    expect(reads).to.equal(3);
  });

  it('the server core reads through it on SQLite', () => {
    expect(core.rowCache).to.be.instanceOf(CiphertextRowCache);
  });
});
