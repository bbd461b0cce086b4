import { expect } from 'chai';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SqliteStorage } from '../../nexus/storage/sqlite.js';
import { tempDir } from '../helpers/env.js';

// The gate's context tracking is switched off between transactions (it taxes
// every promise): each round here needs it back on inside the next one.
describe('SQLite gate: one transaction at a time on one connection', function () {
  this.timeout(20_000);
  let storage: SqliteStorage;

  before(async () => {
    storage = SqliteStorage.open(path.join(tempDir('nexus-gate'), 'nexus.db'));
    await storage.migrateUp();
  });
  after(() => storage.close());

  for (const round of [1, 2, 3]) {
    it(`round ${round}: a read from outside waits for the open transaction and never sees its rolled-back row; reads and nested transactions inside pass`, async () => {
      const key = `gate-${round}`;
      // Started from outside the transaction's async context, at a moment the transaction picks.
      let start!: () => void;
      const outside = new Promise<void>((r) => (start = r)).then(() => storage.meta.get(key));
      const tx = storage.tx(async (r) => {
        await r.meta.set(key, 'uncommitted');
        start();
        await sleep(20);
        expect(await r.meta.get(key)).to.equal('uncommitted');
        // A nested transaction joins this one instead of waiting for it.
        expect(await storage.tx((inner) => inner.meta.get(key))).to.equal('uncommitted');
        expect(await storage.meta.get(key), 'a statement made inside the transaction passes the gate').to.equal('uncommitted');
        throw new Error('roll back');
      });
      const failed = await tx.then(
        () => null,
        (err: Error) => err.message,
      );
      expect(failed).to.equal('roll back');
      expect(await outside).to.equal(null);
      expect(await storage.meta.get(key)).to.equal(null);
    });
  }
});
