import type { SealedValue } from '../crypto/keyring.js';
import type { Policy } from '../policy/types.js';
import { toPolicy, type PolicyRow } from './policies-repo.js';
import type { AuditKeyRow, ChainHead } from './audit-repo.js';
import type { ConfigTopic } from './changes.js';
import { versionsFrom } from './config-version-repo.js';
import { PgDbCredsRepo, PgLeasesRepo } from './pg-dbcreds-repo.js';
import { PgSignalsRepo } from './pg-signals-repo.js';
import type {
  AuditAnchorsStore,
  AuditKeysStore,
  ConfigSecretRow,
  ConfigSecretsRepo,
  ConfigVersionsRepo,
  DataKeyRow,
  DataKeysRepo,
  IssuerRow,
  MetaRepo,
  OidcRepo,
  PoliciesRepo,
  Repos,
  RoleRow,
  SecretRow,
  SecretsRepo,
  TokenRow,
  VersionRow,
} from './storage.js';

/** What a repository needs from the pool or from one transaction's client. */
export interface Queryable {
  query<R>(text: string, params?: unknown[]): Promise<{ rows: R[]; rowCount: number }>;
}

class PgSecretsRepo implements SecretsRepo {
  constructor(private readonly q: Queryable) {}

  async secret(path: string): Promise<SecretRow | undefined> {
    return (await this.q.query<SecretRow>('SELECT * FROM secrets WHERE path = $1', [path])).rows[0];
  }

  async insertSecret(path: string, version: number, now: string): Promise<void> {
    await this.q.query('INSERT INTO secrets (path, current_version, created_at, updated_at) VALUES ($1, $2, $3, $3)', [path, version, now]);
  }

  async bumpSecret(path: string, version: number, now: string): Promise<void> {
    await this.q.query('UPDATE secrets SET current_version = $1, updated_at = $2 WHERE path = $3', [version, now, path]);
  }

  async version(path: string, version: number): Promise<VersionRow | undefined> {
    return (await this.q.query<VersionRow>('SELECT * FROM secret_versions WHERE path = $1 AND version = $2', [path, version])).rows[0];
  }

  async lookup(path: string, version: number | null): Promise<{ current: number; row: VersionRow | null } | undefined> {
    const r = (
      await this.q.query<{ current_version: number } & Partial<VersionRow>>(
        `SELECT s.current_version, v.version, v.key_id, v.nonce, v.ciphertext, v.created_at, v.deleted_at, v.destroyed_at, s.path
           FROM secrets s LEFT JOIN secret_versions v ON v.path = s.path AND v.version = coalesce($1::integer, s.current_version)
         WHERE s.path = $2`,
        [version, path],
      )
    ).rows[0];
    if (!r) return undefined;
    const { current_version, ...v } = r;
    return { current: current_version, row: v.version === null || v.version === undefined ? null : (v as VersionRow) };
  }

  async versions(path: string): Promise<VersionRow[]> {
    return (await this.q.query<VersionRow>('SELECT * FROM secret_versions WHERE path = $1 ORDER BY version', [path])).rows;
  }

  async insertVersion(row: Omit<VersionRow, 'deleted_at' | 'destroyed_at'>): Promise<void> {
    await this.q.query('INSERT INTO secret_versions (path, version, key_id, nonce, ciphertext, created_at) VALUES ($1, $2, $3, $4, $5, $6)', [
      row.path,
      row.version,
      row.key_id,
      row.nonce,
      row.ciphertext,
      row.created_at,
    ]);
  }

  async pruneUpTo(path: string, upTo: number): Promise<void> {
    await this.q.query('DELETE FROM secret_versions WHERE path = $1 AND version <= $2', [path, upTo]);
  }

  async purge(path: string): Promise<number> {
    const n = (await this.q.query('DELETE FROM secret_versions WHERE path = $1', [path])).rowCount;
    await this.q.query('DELETE FROM secrets WHERE path = $1', [path]);
    return n;
  }

  async softDelete(path: string, version: number, now: string): Promise<boolean> {
    return (await this.q.query('UPDATE secret_versions SET deleted_at = $1 WHERE path = $2 AND version = $3 AND deleted_at IS NULL', [now, path, version])).rowCount > 0;
  }

  async undelete(path: string, version: number): Promise<boolean> {
    return (await this.q.query('UPDATE secret_versions SET deleted_at = NULL WHERE path = $1 AND version = $2 AND destroyed_at IS NULL', [path, version])).rowCount > 0;
  }

  async destroy(path: string, version: number, now: string): Promise<boolean> {
    const sql = 'UPDATE secret_versions SET key_id = NULL, nonce = NULL, ciphertext = NULL, destroyed_at = $1 WHERE path = $2 AND version = $3 AND destroyed_at IS NULL';
    return (await this.q.query(sql, [now, path, version])).rowCount > 0;
  }

  async listPaths(prefix: string, after: string, limit: number): Promise<string[]> {
    // Paths are COLLATE "C" (byte order, as on SQLite); every path character is below 0x7f.
    const sql = 'SELECT path FROM secrets WHERE path >= $1 AND path < $2 AND path > $3 ORDER BY path LIMIT $4';
    return (await this.q.query<{ path: string }>(sql, [prefix, `${prefix}\x7f`, after, limit])).rows.map((r) => r.path);
  }

  async count(): Promise<number> {
    return (await this.q.query<{ n: number }>('SELECT count(*)::integer AS n FROM secrets')).rows[0]!.n;
  }

  async notUnderKey(keyId: string, after: { path: string; version: number }, limit: number): Promise<VersionRow[]> {
    const sql = `SELECT * FROM secret_versions WHERE ciphertext IS NOT NULL AND key_id <> $1
                   AND (path, version) > ($2, $3) ORDER BY path, version LIMIT $4`;
    return (await this.q.query<VersionRow>(sql, [keyId, after.path, after.version, limit])).rows;
  }

  async countNotUnderKey(keyId: string): Promise<number> {
    const sql = 'SELECT count(*)::integer AS n FROM secret_versions WHERE ciphertext IS NOT NULL AND key_id <> $1';
    return (await this.q.query<{ n: number }>(sql, [keyId])).rows[0]!.n;
  }

  async replaceCiphertext(path: string, version: number, keyId: string, nonce: Buffer, ciphertext: Buffer): Promise<void> {
    const sql = 'UPDATE secret_versions SET key_id = $1, nonce = $2, ciphertext = $3 WHERE path = $4 AND version = $5 AND ciphertext IS NOT NULL';
    await this.q.query(sql, [keyId, nonce, ciphertext, path, version]);
  }
}

// Kept in step with the SQLite repository's: a key any sealed value names stays.
const UNUSED_KEY =
  'NOT EXISTS (SELECT 1 FROM secret_versions v WHERE v.key_id = data_keys.id) AND NOT EXISTS (SELECT 1 FROM config_secrets c WHERE c.key_id = data_keys.id)';

class PgDataKeysRepo implements DataKeysRepo {
  constructor(private readonly q: Queryable) {}

  async get(id: string): Promise<DataKeyRow | undefined> {
    return (await this.q.query<DataKeyRow>('SELECT * FROM data_keys WHERE id = $1', [id])).rows[0];
  }

  async active(): Promise<DataKeyRow | undefined> {
    return (await this.q.query<DataKeyRow>('SELECT * FROM data_keys WHERE active = 1')).rows[0];
  }

  async all(): Promise<DataKeyRow[]> {
    return (await this.q.query<DataKeyRow>('SELECT * FROM data_keys ORDER BY created_at, id')).rows;
  }

  async notWrappedBy(kcv: string, limit: number): Promise<DataKeyRow[]> {
    return (await this.q.query<DataKeyRow>('SELECT * FROM data_keys WHERE root_kcv <> $1 ORDER BY id LIMIT $2', [kcv, limit])).rows;
  }

  async insert(row: DataKeyRow): Promise<void> {
    if (row.active) await this.q.query('UPDATE data_keys SET active = 0 WHERE active = 1');
    await this.q.query('INSERT INTO data_keys (id, nonce, wrapped, root_kcv, active, created_at) VALUES ($1, $2, $3, $4, $5, $6)', [
      row.id,
      row.nonce,
      row.wrapped,
      row.root_kcv,
      row.active,
      row.created_at,
    ]);
  }

  async activate(id: string): Promise<void> {
    await this.q.query('UPDATE data_keys SET active = 0 WHERE active = 1');
    await this.q.query('UPDATE data_keys SET active = 1 WHERE id = $1', [id]);
  }

  async rewrap(id: string, nonce: Buffer, wrapped: Buffer, kcv: string): Promise<void> {
    await this.q.query('UPDATE data_keys SET nonce = $1, wrapped = $2, root_kcv = $3 WHERE id = $4', [nonce, wrapped, kcv, id]);
  }

  async deleteUnused(): Promise<number> {
    const sql = `DELETE FROM data_keys WHERE active = 0 AND ${UNUSED_KEY}`;
    return (await this.q.query(sql)).rowCount;
  }
}

class PgPoliciesRepo implements PoliciesRepo {
  constructor(private readonly q: Queryable) {}

  async all(): Promise<Policy[]> {
    return (await this.q.query<PolicyRow>('SELECT * FROM policies ORDER BY name')).rows.map(toPolicy);
  }

  async get(name: string): Promise<Policy | undefined> {
    const r = (await this.q.query<PolicyRow>('SELECT * FROM policies WHERE name = $1', [name])).rows[0];
    return r && toPolicy(r);
  }

  async upsert(p: Omit<Policy, 'created_at' | 'updated_at'>, now: string): Promise<void> {
    await this.q.query(
      `INSERT INTO policies (name, spiffe_id, paths, permissions, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)
       ON CONFLICT (name) DO UPDATE SET spiffe_id = excluded.spiffe_id, paths = excluded.paths,
         permissions = excluded.permissions, updated_at = excluded.updated_at`,
      [p.name, p.spiffe_id, JSON.stringify(p.paths), JSON.stringify(p.permissions), now],
    );
  }

  async delete(name: string): Promise<boolean> {
    return (await this.q.query('DELETE FROM policies WHERE name = $1', [name])).rowCount > 0;
  }
}

class PgMetaRepo implements MetaRepo {
  constructor(private readonly q: Queryable) {}

  async get(key: string): Promise<string | null> {
    return (await this.q.query<{ value: string }>('SELECT value FROM meta WHERE key = $1', [key])).rows[0]?.value ?? null;
  }

  async set(key: string, value: string): Promise<void> {
    await this.q.query('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value]);
  }

  async delete(key: string): Promise<void> {
    await this.q.query('DELETE FROM meta WHERE key = $1', [key]);
  }
}

class PgOidcRepo implements OidcRepo {
  /** Whether autovacuum looks after oidc_tokens (reclaimTokens asks once). */
  private autovacuumed: boolean | undefined;

  constructor(private readonly q: Queryable) {}

  async issuers(): Promise<IssuerRow[]> {
    return (await this.q.query<IssuerRow>('SELECT * FROM oidc_issuers ORDER BY name')).rows;
  }

  async issuer(name: string): Promise<IssuerRow | undefined> {
    return (await this.q.query<IssuerRow>('SELECT * FROM oidc_issuers WHERE name = $1', [name])).rows[0];
  }

  async upsertIssuer(i: Omit<IssuerRow, 'created_at' | 'updated_at'>, now: string): Promise<void> {
    await this.q.query(
      `INSERT INTO oidc_issuers (name, issuer, audiences, algorithms, jwks_uri, max_token_age_s, max_token_lifetime_s, tenant_claims, allowed_types, jwks, jwks_file, jwks_stale_s, rate_limit, managed_by, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15) ON CONFLICT (name) DO UPDATE SET issuer = excluded.issuer, audiences = excluded.audiences,
       algorithms = excluded.algorithms, jwks_uri = excluded.jwks_uri, max_token_age_s = excluded.max_token_age_s,
       max_token_lifetime_s = excluded.max_token_lifetime_s, tenant_claims = excluded.tenant_claims, allowed_types = excluded.allowed_types,
       jwks = excluded.jwks, jwks_file = excluded.jwks_file, jwks_stale_s = excluded.jwks_stale_s, rate_limit = excluded.rate_limit, managed_by = excluded.managed_by, updated_at = excluded.updated_at`,
      [i.name, i.issuer, i.audiences, i.algorithms, i.jwks_uri, i.max_token_age_s, i.max_token_lifetime_s, i.tenant_claims, i.allowed_types, i.jwks, i.jwks_file, i.jwks_stale_s, i.rate_limit, i.managed_by, now],
    );
  }

  async deleteIssuer(name: string): Promise<boolean> {
    return (await this.q.query('DELETE FROM oidc_issuers WHERE name = $1', [name])).rowCount > 0;
  }

  async rolesOfIssuer(name: string): Promise<string[]> {
    return (await this.q.query<{ name: string }>('SELECT name FROM oidc_roles WHERE issuer = $1 ORDER BY name', [name])).rows.map((r) => r.name);
  }

  async roles(): Promise<RoleRow[]> {
    return (await this.q.query<RoleRow>('SELECT * FROM oidc_roles ORDER BY name')).rows;
  }

  async role(name: string): Promise<RoleRow | undefined> {
    return (await this.q.query<RoleRow>('SELECT * FROM oidc_roles WHERE name = $1', [name])).rows[0];
  }

  async upsertRole(r: Omit<RoleRow, 'created_at' | 'updated_at'>, now: string): Promise<void> {
    await this.q.query(
      `INSERT INTO oidc_roles (name, issuer, bound_claims, bound_claims_glob, paths, permissions, token_ttl_s, managed_by, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT (name) DO UPDATE SET issuer = excluded.issuer, bound_claims = excluded.bound_claims,
       bound_claims_glob = excluded.bound_claims_glob, paths = excluded.paths, permissions = excluded.permissions,
       token_ttl_s = excluded.token_ttl_s, managed_by = excluded.managed_by, updated_at = excluded.updated_at`,
      [r.name, r.issuer, r.bound_claims, r.bound_claims_glob, r.paths, r.permissions, r.token_ttl_s, r.managed_by, now],
    );
  }

  async deleteRole(name: string): Promise<boolean> {
    return (await this.q.query('DELETE FROM oidc_roles WHERE name = $1', [name])).rowCount > 0;
  }

  async insertToken(hash: Buffer, t: TokenRow, now: string): Promise<void> {
    await this.q.query(
      `INSERT INTO oidc_tokens (hash, issuer, issuer_url, jwks_uri, header, subject, roles, claims, key_kid, key_thumbprint, expires_at, ci_run, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
      [hash, t.issuer, t.issuer_url, t.jwks_uri, t.header, t.subject, t.roles, t.claims, t.key_kid, t.key_thumbprint, t.expires_at, t.ci_run, now],
    );
  }

  async token(hash: Buffer): Promise<TokenRow | undefined> {
    const sql = 'SELECT issuer, issuer_url, jwks_uri, header, subject, roles, claims, key_kid, key_thumbprint, expires_at, ci_run, created_at FROM oidc_tokens WHERE hash = $1';
    return (await this.q.query<TokenRow>(sql, [hash])).rows[0];
  }

  async revokeRole(role: string): Promise<number> {
    return (await this.q.query('DELETE FROM oidc_tokens WHERE roles::jsonb ? $1', [role])).rowCount;
  }

  async revokeToken(hash: Buffer): Promise<boolean> {
    return (await this.q.query('DELETE FROM oidc_tokens WHERE hash = $1', [hash])).rowCount > 0;
  }

  async revokeIssuer(issuer: string, role: string | null): Promise<number> {
    const r = role === null ? await this.q.query('DELETE FROM oidc_tokens WHERE issuer = $1', [issuer]) : await this.q.query('DELETE FROM oidc_tokens WHERE issuer = $1 AND roles::jsonb ? $2', [issuer, role]);
    return r.rowCount;
  }

  async revokeCiRun(issuer: string, ciRun: string): Promise<Buffer[]> {
    return (await this.q.query<{ hash: Buffer }>('DELETE FROM oidc_tokens WHERE issuer = $1 AND ci_run = $2 RETURNING hash', [issuer, ciRun])).rows.map((r) => r.hash);
  }

  async claimDelivery(keys: string[], now: number, expiresAt: number): Promise<boolean> {
    const seen = await this.q.query('SELECT 1 FROM ci_event_deliveries WHERE key = ANY($1::text[]) AND expires_at > $2', [keys, now]);
    if (seen.rowCount > 0) return false;
    // Two deliveries of one event at once: the second's insert conflicts, its transaction is retried and sees the first.
    for (const k of keys) await this.q.query('INSERT INTO ci_event_deliveries (key, expires_at) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at', [k, expiresAt]);
    return true;
  }

  /** At most `limit` expired tokens, and deliveries remembered past their expiry. */
  async purgeExpired(now: number, limit: number): Promise<number> {
    await this.q.query('DELETE FROM ci_event_deliveries WHERE expires_at <= $1', [now]);
    // Batched by primary key, not one giant DELETE: short transactions whose
    // dead tuples autovacuum reclaims as it goes. SKIP LOCKED lets replicas
    // purge at once without waiting on each other's batches (or on a revoke).
    const sql = `DELETE FROM oidc_tokens WHERE hash IN
      (SELECT hash FROM oidc_tokens WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)`;
    return (await this.q.query(sql, [now, limit])).rowCount;
  }

  /**
   * Each exchange and each revoke-self leaves a dead tuple; autovacuum is what
   * makes their space reusable, and with it off (on the server, or for this
   * table) a login storm grows the table without bound: 1M exchanges left a
   * 550 MB table holding 8,563 live tokens. Then the purge vacuums it itself
   * (a plain VACUUM: no lock that a read or write waits on; SKIP_LOCKED when
   * another replica's is under way). Asked of the server once.
   */
  async reclaimTokens(): Promise<boolean> {
    this.autovacuumed ??= (
      await this.q.query<{ on: boolean }>(
        `SELECT current_setting('autovacuum') = 'on' AND NOT coalesce('autovacuum_enabled=false' = ANY(reloptions), false) AS on
         FROM pg_class WHERE oid = 'oidc_tokens'::regclass`,
      )
    ).rows[0]!.on;
    if (this.autovacuumed) return false;
    await this.q.query('VACUUM (SKIP_LOCKED) oidc_tokens');
    return true;
  }
}

class PgConfigVersions implements ConfigVersionsRepo {
  constructor(private readonly q: Queryable) {}

  async bump(topic: ConfigTopic): Promise<void> {
    await this.q.query('UPDATE config_version SET version = version + 1 WHERE topic = $1', [topic]);
  }

  async all(): Promise<Map<ConfigTopic, number>> {
    return versionsFrom((await this.q.query<{ topic: string; version: number }>('SELECT topic, version FROM config_version')).rows);
  }
}

class PgConfigSecrets implements ConfigSecretsRepo {
  constructor(private readonly q: Queryable) {}

  async get(owner: string): Promise<ConfigSecretRow | undefined> {
    return (await this.q.query<ConfigSecretRow>('SELECT * FROM config_secrets WHERE owner = $1', [owner])).rows[0];
  }

  async put(owner: string, sealed: SealedValue, now: string): Promise<void> {
    await this.q.query(
      `INSERT INTO config_secrets (owner, key_id, nonce, ciphertext, updated_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (owner) DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext, updated_at = excluded.updated_at`,
      [owner, sealed.keyId, sealed.nonce, sealed.ciphertext, now],
    );
  }

  async delete(owner: string): Promise<boolean> {
    return (await this.q.query('DELETE FROM config_secrets WHERE owner = $1', [owner])).rowCount > 0;
  }
}

class PgAuditKeys implements AuditKeysStore {
  constructor(private readonly q: Queryable) {}

  async all(): Promise<AuditKeyRow[]> {
    return (await this.q.query<AuditKeyRow>('SELECT kcv, nonce, wrapped, root_kcv FROM audit_keys ORDER BY kcv')).rows;
  }

  async put(row: AuditKeyRow): Promise<void> {
    await this.q.query(
      `INSERT INTO audit_keys (kcv, nonce, wrapped, root_kcv, created_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (kcv) DO UPDATE SET nonce = excluded.nonce, wrapped = excluded.wrapped, root_kcv = excluded.root_kcv`,
      [row.kcv, row.nonce, row.wrapped, row.root_kcv, new Date().toISOString()],
    );
  }
}

export class PgAuditAnchors implements AuditAnchorsStore {
  constructor(private readonly q: Queryable) {}

  async all(): Promise<Map<string, ChainHead>> {
    const rows = (await this.q.query<{ chain: string; generation: number; count: number; mac: string; key_kcv: string }>('SELECT * FROM audit_anchor')).rows;
    return new Map(rows.map((r) => [r.chain, { generation: r.generation, count: r.count, mac: r.mac, kcv: r.key_kcv }]));
  }

  async set(chain: string, head: ChainHead): Promise<void> {
    await this.q.query(
      `INSERT INTO audit_anchor (chain, generation, count, mac, key_kcv, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (chain) DO UPDATE SET generation = excluded.generation, count = excluded.count, mac = excluded.mac,
       key_kcv = excluded.key_kcv, updated_at = excluded.updated_at`,
      [chain, head.generation, head.count, head.mac, head.kcv, new Date().toISOString()],
    );
  }
}

export function pgRepos(q: Queryable): Repos {
  return {
    secrets: new PgSecretsRepo(q),
    dataKeys: new PgDataKeysRepo(q),
    policies: new PgPoliciesRepo(q),
    meta: new PgMetaRepo(q),
    oidc: new PgOidcRepo(q),
    configVersions: new PgConfigVersions(q),
    configSecrets: new PgConfigSecrets(q),
    signals: new PgSignalsRepo(q),
    auditKeys: new PgAuditKeys(q),
    dbcreds: new PgDbCredsRepo(q),
    leases: new PgLeasesRepo(q),
  };
}
