import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import type { Core } from '../../nexus/core.js';
import { newDataKey } from '../../nexus/crypto/keyring.js';
import { DataIntegrityError } from '../../nexus/errors.js';
import { openTestCore, tempDir } from '../helpers/env.js';
import { createTestDatabase, requirePg, type TestDatabase } from '../helpers/pg.js';

const VALUE = 'admin-password-7f3a91c2';

async function put(core: Core, owner: string, value: string): Promise<void> {
  const sealed = await core.keyring.sealConfig(owner, Buffer.from(value));
  await core.storage.tx((r) => r.configSecrets.put(owner, sealed, new Date().toISOString()));
}

async function read(core: Core, owner: string): Promise<string | undefined> {
  const row = await core.storage.configSecrets.get(owner);
  return row && (await core.keyring.openConfig(owner, { keyId: row.key_id, nonce: row.nonce, ciphertext: row.ciphertext })).toString();
}

function engineCases(open: () => Promise<Core>): void {
  let core: Core;
  beforeEach(async () => {
    core = await open();
  });
  afterEach(async () => core.close());

  it('a value sealed for its owner reads back, is replaced, and is deleted', async () => {
    await put(core, 'db-connection/main', VALUE);
    expect(await read(core, 'db-connection/main')).to.equal(VALUE);
    await put(core, 'db-connection/main', 'second');
    expect(await read(core, 'db-connection/main')).to.equal('second');
    expect(await core.storage.tx((r) => r.configSecrets.delete('db-connection/main'))).to.equal(true);
    expect(await read(core, 'db-connection/main')).to.equal(undefined);
    expect(await core.storage.tx((r) => r.configSecrets.delete('db-connection/main'))).to.equal(false);
  });

  it("a row moved to another owner does not open (the owner is bound into the ciphertext)", async () => {
    await put(core, 'db-connection/a', VALUE);
    const row = (await core.storage.configSecrets.get('db-connection/a'))!;
    const sealed = { keyId: row.key_id, nonce: row.nonce, ciphertext: row.ciphertext };
    await core.storage.tx((r) => r.configSecrets.put('oidc-issuer-webhook/b', sealed, row.updated_at));
    await core.keyring.openConfig('oidc-issuer-webhook/b', sealed).then(
      () => expect.fail('opened under another owner'),
      (err: unknown) => expect(err).to.be.instanceOf(DataIntegrityError),
    );
  });

  it('a data key that only a configuration value uses is kept when unused keys are deleted', async () => {
    await put(core, 'db-connection/main', VALUE);
    const keyId = (await core.storage.configSecrets.get('db-connection/main'))!.key_id;
    // A new active key: the old one is now inactive and named by no secret version.
    await core.storage.tx(async (r) => {
      await r.dataKeys.insert(newDataKey(core.rootKey, true).row);
      await r.dataKeys.deleteUnused();
    });
    expect(await core.storage.dataKeys.get(keyId)).to.not.equal(undefined);
    core.keyring.forget();
    expect(await read(core, 'db-connection/main')).to.equal(VALUE);
  });
}

describe('configuration secrets: write-only values sealed under a data key, bound to their owner', function () {
  describe('SQLite', function () {
    const dirs: string[] = [];
    engineCases(async () => {
      const dir = tempDir();
      dirs.push(dir);
      return openTestCore(dir);
    });

    it('the database file never holds the plaintext', async () => {
      const dir = tempDir();
      const core = await openTestCore(dir);
      await put(core, 'db-connection/main', VALUE);
      await core.close();
      for (const f of fs.readdirSync(dir).filter((n) => n.startsWith('nexus.db'))) {
        expect(fs.readFileSync(path.join(dir, f)).includes(Buffer.from(VALUE)), f).to.equal(false);
      }
    });
  });

  describe('PostgreSQL', function () {
    let db: TestDatabase;
    before(async function () {
      db = await createTestDatabase(await requirePg(this));
    });
    after(async () => db?.drop());
    let rootKey: string | undefined;
    engineCases(async () => {
      const core = await openTestCore(tempDir(), { NEXUS_DATABASE_URL: db.url, ...(rootKey ? { NEXUS_ROOT_KEY: rootKey } : {}) });
      rootKey ??= core.rootKey.bytes.toString('base64');
      return core;
    });
  });
});
