import { expect } from 'chai';
import type { Core } from '../../nexus/core.js';
import { codeOf } from '../helpers/errors.js';
import { dbBytes, openTestCore, tempDir } from '../helpers/env.js';

describe('secrets service: patch, rollback, purge, several versions', () => {
  let dir: string;
  let core: Core;

  beforeEach(async () => {
    dir = tempDir();
    core = await openTestCore(dir, { NEXUS_MAX_VERSIONS: '5' });
  });
  afterEach(() => core.close());

  it('patch merges into the latest version as a new version; null removes a key; cas applies', async () => {
    const s = core.secrets;
    await s.put('app/db', { user: 'u', pass: 'p', old: 'x' });
    expect(await s.patch('app/db', { pass: 'p2', old: null, extra: 'e' })).to.deep.equal({ path: 'app/db', version: 2, created: false });
    expect((await s.get('app/db')).data).to.deep.equal({ user: 'u', pass: 'p2', extra: 'e' });
    expect((await s.get('app/db', 1)).data).to.deep.equal({ user: 'u', pass: 'p', old: 'x' });
    expect(await codeOf(() => s.patch('app/db', { pass: 'lost' }, { cas: 1 }))).to.equal('conflict');
    expect((await s.patch('app/db', { pass: 'p3' }, { cas: 2 })).version).to.equal(3);
    expect(await codeOf(() => s.patch('app/missing', { a: '1' }))).to.equal('not_found');
    expect(await codeOf(() => s.patch('app/db', { n: 1 }))).to.equal('bad_request');
    expect(await codeOf(() => s.patch('app/db', [1]))).to.equal('bad_request');
    // The latest version deleted: nothing to merge into.
    await s.delete('app/db');
    expect(await codeOf(() => s.patch('app/db', { a: '1' }))).to.equal('not_found');
    expect((await s.metadata('app/db')).current_version).to.equal(3);
  });

  it('rollback writes version N data as a new version; N must be readable', async () => {
    const s = core.secrets;
    await s.put('r/x', { v: 'one' });
    await s.put('r/x', { v: 'two' });
    expect(await s.rollback('r/x', 1)).to.deep.equal({ path: 'r/x', version: 3, created: false });
    expect((await s.get('r/x')).data).to.deep.equal({ v: 'one' });
    await s.delete('r/x', [2]);
    expect(await codeOf(() => s.rollback('r/x', 2))).to.equal('not_found');
    await s.destroy('r/x', [1]);
    expect(await codeOf(() => s.rollback('r/x', 1))).to.equal('not_found');
    expect(await codeOf(() => s.rollback('r/x', 9))).to.equal('not_found');
    expect(await codeOf(() => s.rollback('r/x', 0))).to.equal('bad_request');
    expect(await codeOf(() => s.rollback('r/none', 1))).to.equal('not_found');
    expect(await codeOf(() => s.rollback('r/x', 3, { cas: 1 }))).to.equal('conflict');
    expect((await s.metadata('r/x')).current_version).to.equal(3);
  });

  it('purge removes the path, every version and its bytes; it is no longer listed', async () => {
    const s = core.secrets;
    await s.put('p/gone', { k: 'purge-me-value-1' });
    await s.put('p/gone', { k: 'purge-me-value-2' });
    await s.put('p/kept', { k: 'kept' });
    const cts = (core.db.prepare('SELECT ciphertext FROM secret_versions WHERE path = ?').all('p/gone') as Array<{ ciphertext: Buffer }>).map((r) => Buffer.from(r.ciphertext));
    core.db.pragma('wal_checkpoint(TRUNCATE)');
    expect(cts.every((ct) => dbBytes(core.config.dbFile).includes(ct))).to.equal(true);
    expect(await s.purge('p/gone')).to.deep.equal({ path: 'p/gone', versions: 2 });
    expect(await codeOf(() => s.metadata('p/gone'))).to.equal('not_found');
    expect((await s.list({ prefix: 'p/' })).paths).to.deep.equal(['p/kept']);
    expect(await codeOf(() => s.purge('p/gone'))).to.equal('not_found');
    const bytes = dbBytes(core.config.dbFile);
    for (const ct of cts) expect(bytes.includes(ct), 'ciphertext bytes still on disk').to.equal(false);
    expect(core.db.prepare('SELECT count(*) AS n FROM secret_versions WHERE path = ?').get('p/gone')).to.deep.equal({ n: 0 });
    // Written again, it starts over at version 1.
    expect((await s.put('p/gone', { k: 'new' })).version).to.equal(1);
  });

  it('delete, undelete and destroy take several versions and report those not in the right state', async () => {
    const s = core.secrets;
    for (const v of ['1', '2', '3', '4']) await s.put('m/x', { v });
    expect(await s.delete('m/x', [1, 2])).to.deep.equal({ path: 'm/x', done: [1, 2], skipped: [] });
    expect(await s.delete('m/x', [2, 3, 9])).to.deep.equal({ path: 'm/x', done: [3], skipped: [{ version: 2, reason: 'already_deleted' }, { version: 9, reason: 'not_found' }] });
    // No versions: the latest.
    expect(await s.delete('m/x')).to.deep.equal({ path: 'm/x', done: [4], skipped: [] });
    expect(await s.destroy('m/x', [1])).to.deep.equal({ path: 'm/x', done: [1], skipped: [] });
    expect(await s.undelete('m/x', [1, 2, 3])).to.deep.equal({ path: 'm/x', done: [2, 3], skipped: [{ version: 1, reason: 'destroyed' }] });
    expect(await s.undelete('m/x', [2])).to.deep.equal({ path: 'm/x', done: [], skipped: [{ version: 2, reason: 'not_deleted' }] });
    expect(await s.destroy('m/x', [1, 2])).to.deep.equal({ path: 'm/x', done: [2], skipped: [{ version: 1, reason: 'already_destroyed' }] });
    expect(await s.delete('m/x', [1])).to.deep.equal({ path: 'm/x', done: [], skipped: [{ version: 1, reason: 'destroyed' }] });
    expect(await codeOf(() => s.delete('m/none', [1]))).to.equal('not_found');
    expect(await codeOf(() => s.delete('m/x', []))).to.equal('bad_request');
    expect((await s.get('m/x', 3)).data).to.deep.equal({ v: '3' });
  });
});
