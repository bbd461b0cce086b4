import type { SealedValue } from '../crypto/keyring.js';
import type { Db } from './db.js';
import type { SqliteGate } from './sqlite-gate.js';
import type { ConfigSecretRow, ConfigSecretsRepo } from './storage.js';

export class SqliteConfigSecretsRepo implements ConfigSecretsRepo {
  private readonly s;

  constructor(
    db: Db,
    private readonly g: SqliteGate,
  ) {
    this.s = {
      get: db.prepare<[string], ConfigSecretRow>('SELECT * FROM config_secrets WHERE owner = ?'),
      put: db.prepare(
        `INSERT INTO config_secrets (owner, key_id, nonce, ciphertext, updated_at) VALUES (@owner, @key_id, @nonce, @ciphertext, @updated_at)
         ON CONFLICT (owner) DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext, updated_at = excluded.updated_at`,
      ),
      delete: db.prepare('DELETE FROM config_secrets WHERE owner = ?'),
    };
  }

  async get(owner: string): Promise<ConfigSecretRow | undefined> {
    await this.g.idle();
    return this.s.get.get(owner);
  }

  async put(owner: string, sealed: SealedValue, now: string): Promise<void> {
    await this.g.idle();
    this.s.put.run({ owner, key_id: sealed.keyId, nonce: sealed.nonce, ciphertext: sealed.ciphertext, updated_at: now });
  }

  async delete(owner: string): Promise<boolean> {
    await this.g.idle();
    return this.s.delete.run(owner).changes > 0;
  }
}
