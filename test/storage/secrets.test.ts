import { expect } from 'chai';
import Database from 'better-sqlite3';
import type { Core } from '../../nexus/core.js';
import { listScope } from '../../nexus/policy/list-scope.js';
import { codeOf } from '../helpers/errors.js';
import { dbBytes, openTestCore, tempDir } from '../helpers/env.js';

describe('secrets service', () => {
  let dir: string;
  let core: Core;

  beforeEach(async () => {
    dir = tempDir();
    core = await openTestCore(dir, { NEXUS_MAX_VERSIONS: '3' });
  });
  afterEach(() => core.close());

  it('puts and gets the latest and an explicit version', async () => {
    const s = core.secrets;
    expect(await s.put('app/db', { user: 'u1', pass: 'p1' })).to.deep.equal({ path: 'app/db', version: 1, created: true });
    expect(await s.put('app/db', { user: 'u2', pass: 'p2' })).to.deep.equal({ path: 'app/db', version: 2, created: false });
    const latest = await s.get('app/db');
    expect(latest.version).to.equal(2);
    expect(latest.data).to.deep.equal({ user: 'u2', pass: 'p2' });
    expect(latest.created_at).to.match(/^\d{4}-\d\d-\d\dT/);
    expect((await s.get('app/db', 1)).data).to.deep.equal({ user: 'u1', pass: 'p1' });
    expect((await s.get('app/db', '1')).version).to.equal(1);
    expect(await codeOf(() => s.get('app/db', 3))).to.equal('not_found');
    expect(await codeOf(() => s.get('app/missing'))).to.equal('not_found');
  });

  it('check-and-set: cas 0 creates only, a stale cas conflicts and writes nothing', async () => {
    const s = core.secrets;
    expect((await s.put('cas/x', { v: '1' }, { cas: 0 })).version).to.equal(1);
    expect(await codeOf(() => s.put('cas/x', { v: 'again' }, { cas: 0 }))).to.equal('conflict');
    expect((await s.put('cas/x', { v: '2' }, { cas: 1 })).version).to.equal(2);
    expect(await codeOf(() => s.put('cas/x', { v: 'stale' }, { cas: 1 }))).to.equal('conflict');
    expect((await s.get('cas/x')).data).to.deep.equal({ v: '2' });
    expect((await s.metadata('cas/x')).current_version).to.equal(2);
    // Deleted versions still count for cas.
    await s.delete('cas/x');
    expect(await codeOf(() => s.put('cas/x', { v: 'x' }, { cas: 1 }))).to.equal('conflict');
    expect((await s.put('cas/x', { v: '3' }, { cas: 2 })).version).to.equal(3);
    expect(await codeOf(() => s.put('cas/x', { v: 'x' }, { cas: -1 }))).to.equal('bad_request');
    expect(await codeOf(() => s.put('cas/x', { v: 'x' }, { cas: 1.5 }))).to.equal('bad_request');
  });

  it('prunes the oldest versions beyond max versions', async () => {
    const s = core.secrets;
    for (let i = 1; i <= 5; i++) await s.put('p/x', { i: String(i) });
    const md = await s.metadata('p/x');
    expect(md.current_version).to.equal(5);
    expect(md.versions.map((v) => v.version)).to.deep.equal([3, 4, 5]);
    expect(await codeOf(() => s.get('p/x', 2))).to.equal('not_found');
    expect((await s.get('p/x', 3)).data).to.deep.equal({ i: '3' });
  });

  it('soft delete hides a version; undelete brings it back', async () => {
    const s = core.secrets;
    await s.put('d/x', { a: '1' });
    await s.put('d/x', { a: '2' });
    await s.delete('d/x');
    expect(await codeOf(() => s.get('d/x'))).to.equal('not_found');
    expect((await s.get('d/x', 1)).data).to.deep.equal({ a: '1' });
    await s.delete('d/x', [1]);
    const md = await s.metadata('d/x');
    expect(md.versions.every((v) => v.deleted_at !== null)).to.equal(true);
    await s.undelete('d/x', [1, 2]);
    expect((await s.get('d/x')).data).to.deep.equal({ a: '2' });
    expect((await s.get('d/x', 1)).data).to.deep.equal({ a: '1' });
    expect((await s.delete('d/x', [9])).skipped).to.deep.equal([{ version: 9, reason: 'not_found' }]);
    expect(await codeOf(() => s.delete('d/none'))).to.equal('not_found');
    expect(await codeOf(() => s.undelete('d/x', []))).to.equal('bad_request');
    expect(await codeOf(() => s.undelete('d/x', ['a']))).to.equal('bad_request');
  });

  it('destroy erases the ciphertext bytes, not just a flag', async () => {
    const s = core.secrets;
    await s.put('z/x', { k: 'destroy-me-value' });
    await s.put('z/x', { k: 'keep-me-value' });
    const raw = core.db.prepare('SELECT ciphertext FROM secret_versions WHERE path = ? AND version = 1').get('z/x') as { ciphertext: Buffer };
    const ct = Buffer.from(raw.ciphertext);
    core.db.pragma('wal_checkpoint(TRUNCATE)');
    expect(dbBytes(core.config.dbFile).includes(ct)).to.equal(true);
    await s.destroy('z/x', [1]);
    const row = core.db.prepare('SELECT * FROM secret_versions WHERE path = ? AND version = 1').get('z/x') as Record<string, unknown>;
    expect(row.ciphertext).to.equal(null);
    expect(row.nonce).to.equal(null);
    expect(row.key_id).to.equal(null);
    expect(await codeOf(() => s.get('z/x', 1))).to.equal('not_found');
    expect((await s.metadata('z/x')).versions.find((v) => v.version === 1)!.destroyed).to.equal(true);
    // undelete cannot resurrect a destroyed version
    await s.undelete('z/x', [1]);
    expect(await codeOf(() => s.get('z/x', 1))).to.equal('not_found');
    expect((await s.get('z/x', 2)).data).to.deep.equal({ k: 'keep-me-value' });
    expect(dbBytes(core.config.dbFile).includes(ct), 'ciphertext bytes still on disk').to.equal(false);
  });

  it('metadata lists versions without values', async () => {
    const s = core.secrets;
    await s.put('m/x', { secret: 'metadata-must-not-show' });
    const md = await s.metadata('m/x');
    expect(md).to.deep.include({ path: 'm/x', current_version: 1 });
    expect(md.versions).to.have.length(1);
    expect(Object.keys(md.versions[0]!).sort()).to.deep.equal(['created_at', 'deleted_at', 'destroyed', 'version']);
    expect(JSON.stringify(md)).to.not.include('metadata-must-not-show');
  });

  it('lists by prefix with a cursor, and only what the filter allows', async () => {
    const s = core.secrets;
    const paths = ['a/1', 'a/2', 'a/3', 'a/b/4', 'ab/5', 'b/6'];
    for (const p of paths) await s.put(p, { v: p });
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await s.list({ prefix: 'a/', limit: 2, cursor });
      seen.push(...page.paths);
      cursor = page.next_cursor;
      pages++;
    } while (cursor);
    expect(seen).to.deep.equal(['a/1', 'a/2', 'a/3', 'a/b/4']);
    expect(pages).to.equal(2);
    expect((await s.list({ prefix: 'a' })).paths).to.deep.equal(['a/1', 'a/2', 'a/3', 'a/b/4', 'ab/5']);
    expect((await s.list({ scope: listScope(['**5', 'b/6']) })).paths).to.deep.equal(['ab/5', 'b/6']);
    expect(await s.list({ prefix: 'zz' })).to.deep.equal({ paths: [], next_cursor: null });
    expect(await codeOf(() => s.list({ cursor: 'not a cursor!' }))).to.equal('bad_request');
    expect(await codeOf(() => s.list({ limit: 0 }))).to.equal('bad_request');
    expect(await codeOf(() => s.list({ prefix: '../' }))).to.equal('bad_request');
  });

  it('stores values only as ciphertext: no plaintext in db, WAL or shm bytes', async () => {
    const marker = 'PLAINTEXT-MARKER-7f3a9c';
    const key = 'KEYNAME-MARKER-55e1';
    for (let i = 0; i < 50; i++) await core.secrets.put(`plain/s${i}`, { [key]: `${marker}-${i}` });
    for (const b of [dbBytes(core.config.dbFile)]) {
      expect(b.includes(Buffer.from(marker))).to.equal(false);
      expect(b.includes(Buffer.from(key))).to.equal(false);
    }
    core.db.pragma('wal_checkpoint(TRUNCATE)');
    expect(dbBytes(core.config.dbFile).includes(Buffer.from(marker))).to.equal(false);
    // Paths are configuration and stay in clear (the threat model says so).
    expect(dbBytes(core.config.dbFile).includes(Buffer.from('plain/s1'))).to.equal(true);
  });

  it('a ciphertext copied onto another path, or with a flipped byte, is data_integrity', async () => {
    const s = core.secrets;
    await s.put('victim/x', { v: 'victim' });
    await s.put('attacker/x', { v: 'attacker' });
    // Copy the attacker's row over the victim's with a second connection, as someone with file access would.
    const raw = new Database(core.config.dbFile);
    raw.prepare(
      `UPDATE secret_versions SET (key_id, nonce, ciphertext) =
         (SELECT key_id, nonce, ciphertext FROM secret_versions WHERE path = 'attacker/x' AND version = 1)
       WHERE path = 'victim/x' AND version = 1`,
    ).run();
    expect(await codeOf(() => s.get('victim/x'))).to.equal('data_integrity');
    // Same path, another version number
    await s.put('ver/x', { v: '1' });
    await s.put('ver/x', { v: '2' });
    raw.prepare(
      `UPDATE secret_versions SET (key_id, nonce, ciphertext) =
         (SELECT key_id, nonce, ciphertext FROM secret_versions WHERE path = 'ver/x' AND version = 1)
       WHERE path = 'ver/x' AND version = 2`,
    ).run();
    expect(await codeOf(() => s.get('ver/x'))).to.equal('data_integrity');
    // One flipped bit
    const row = raw.prepare("SELECT ciphertext FROM secret_versions WHERE path = 'attacker/x'").get() as { ciphertext: Buffer };
    const flipped = Buffer.from(row.ciphertext);
    flipped[5] = flipped[5]! ^ 0x01;
    raw.prepare("UPDATE secret_versions SET ciphertext = ? WHERE path = 'attacker/x'").run(flipped);
    raw.close();
    expect(await codeOf(() => s.get('attacker/x'))).to.equal('data_integrity');
  });
});
