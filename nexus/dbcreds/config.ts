import type { Keyring } from '../crypto/keyring.js';
import { BadRequestError, ConflictError, NotFoundError, UnavailableError } from '../errors.js';
import { parseName } from '../policy/schema.js';
import { parseInput } from '../schema.js';
import type { DbConnectionRow, DbRoleRow } from '../storage/dbcreds-rows.js';
import type { Repos, Storage } from '../storage/storage.js';
import { DbConnectionInput, DbRoleInput, type DbConnection, type DbRole } from './schema.js';
import { checkStatements } from './statements.js';
import { parseTargetUrl, verifyTarget, type TargetLogin, type TargetOptions } from './target.js';
import { checkUsernameTemplate, DEFAULT_USERNAME_TEMPLATE } from './username.js';

/** Where a connection's admin password is sealed (config_secrets). */
export const passwordOwner = (connection: string) => `db-connection/${connection}`;

function connectionView(r: DbConnectionRow): DbConnection {
  return { name: r.name, url: r.url, username: r.username, allowed_roles: JSON.parse(r.allowed_roles) as string[], created_at: r.created_at, updated_at: r.updated_at };
}

function roleView(r: DbRoleRow): DbRole {
  return {
    name: r.name,
    connection: r.connection,
    creation_statements: JSON.parse(r.creation_statements) as string[],
    ...(r.revocation_statements ? { revocation_statements: JSON.parse(r.revocation_statements) as string[] } : {}),
    default_ttl_s: r.default_ttl_s,
    max_ttl_s: r.max_ttl_s,
    username_template: r.username_template ?? DEFAULT_USERNAME_TEMPLATE,
    created_at: r.created_at,
    updated_at: r.updated_at,
  };
}

export function allows(connection: DbConnectionRow, role: string): boolean {
  const allowed = JSON.parse(connection.allowed_roles) as string[];
  return allowed.includes(role) || allowed.includes('*');
}

/**
 * Database connections and credential roles as admin objects. Nothing is
 * cached: every replica reads them at use, so a change bites everywhere at once.
 */
export class DbCredsConfig {
  constructor(
    private readonly storage: Storage,
    private readonly keyring: Keyring,
    private readonly target: TargetOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /** Verifies by connecting once, then stores; the password sealed outside the transaction, stored inside it. */
  async putConnection(rawName: string, raw: unknown): Promise<{ connection: DbConnection; created: boolean }> {
    const name = parseName(rawName);
    const input = parseInput(DbConnectionInput, raw);
    parseTargetUrl(input.url);
    // Before connecting: a url or username that cannot be verified is still refused for what it would do to the leases.
    await this.refuseMoveUnderLeases(this.storage, name, input);
    await verifyTarget({ url: input.url, username: input.username, password: input.password }, this.target);
    const sealed = await this.keyring.sealConfig(passwordOwner(name), Buffer.from(input.password, 'utf8'));
    const at = new Date(this.now()).toISOString();
    const created = await this.storage.tx(async (r) => {
      const had = await this.refuseMoveUnderLeases(r, name, input);
      await r.dbcreds.upsertConnection({ name, url: input.url, username: input.username, allowed_roles: JSON.stringify([...new Set(input.allowed_roles)]) }, at);
      await r.configSecrets.put(passwordOwner(name), sealed, at);
      return !had;
    });
    return { connection: connectionView((await this.storage.dbcreds.connection(name))!), created };
  }

  /**
   * A lease is revoked through its connection: pointed at another database
   * or admin while leases stand, their users would be left where they are.
   * Resolves to the connection as stored (undefined: a new one).
   */
  private async refuseMoveUnderLeases(r: Pick<Repos, 'dbcreds' | 'leases'>, name: string, input: { url: string; username: string }): Promise<DbConnectionRow | undefined> {
    const had = await r.dbcreds.connection(name);
    if (had && (had.url !== input.url || had.username !== input.username)) {
      const n = Number(await r.leases.countOfConnection(name));
      if (n > 0) throw new ConflictError(`database connection ${name} still has ${n} lease(s): its url or username cannot change until they are revoked (PUT /v1/leases/revoke-prefix)`);
    }
    return had;
  }

  async getConnection(rawName: string): Promise<DbConnection> {
    return connectionView(await this.connectionRow(parseName(rawName)));
  }

  async listConnections(): Promise<DbConnection[]> {
    return (await this.storage.dbcreds.connections()).map(connectionView);
  }

  /** Refused while leases stand on it: revoking them needs its admin credential. */
  async deleteConnection(rawName: string): Promise<void> {
    const name = parseName(rawName);
    await this.storage.tx(async (r) => {
      if (!(await r.dbcreds.connection(name))) throw new NotFoundError(`no database connection ${name}`);
      const n = await r.leases.countOfConnection(name);
      if (n > 0) throw new ConflictError(`database connection ${name} still has ${n} lease(s): revoke them first (PUT /v1/leases/revoke-prefix)`);
      await r.dbcreds.deleteConnection(name);
      await r.configSecrets.delete(passwordOwner(name));
    });
  }

  async putRole(rawName: string, raw: unknown): Promise<{ role: DbRole; created: boolean }> {
    const name = parseName(rawName);
    const input = parseInput(DbRoleInput, raw);
    checkStatements('creation_statements', input.creation_statements, { needName: true, needExpiration: true });
    if (input.revocation_statements) checkStatements('revocation_statements', input.revocation_statements, { needName: true, allowed: new Set(['name']) });
    if (input.username_template !== undefined) checkUsernameTemplate(input.username_template);
    if (input.default_ttl_s > input.max_ttl_s) throw new BadRequestError('default_ttl_s', `default_ttl_s (${input.default_ttl_s}) must not exceed max_ttl_s (${input.max_ttl_s})`);
    const at = new Date(this.now()).toISOString();
    const created = await this.storage.tx(async (r) => {
      const conn = await r.dbcreds.connection(input.connection);
      if (!conn) throw new BadRequestError('connection', `no database connection ${input.connection}`);
      if (!allows(conn, name)) throw new BadRequestError('connection', `database connection ${input.connection} does not allow role ${name} (its allowed_roles)`);
      const had = await r.dbcreds.role(name);
      await r.dbcreds.upsertRole(
        {
          name,
          connection: input.connection,
          creation_statements: JSON.stringify(input.creation_statements),
          revocation_statements: input.revocation_statements ? JSON.stringify(input.revocation_statements) : null,
          default_ttl_s: input.default_ttl_s,
          max_ttl_s: input.max_ttl_s,
          username_template: input.username_template ?? null,
        },
        at,
      );
      return !had;
    });
    return { role: roleView((await this.storage.dbcreds.role(name))!), created };
  }

  async getRole(rawName: string): Promise<DbRole> {
    return roleView(await this.roleRow(parseName(rawName)));
  }

  async listRoles(): Promise<DbRole[]> {
    return (await this.storage.dbcreds.roles()).map(roleView);
  }

  /** Its leases stay and are revoked at their end (with the default revocation if none is left to say otherwise). */
  async deleteRole(rawName: string): Promise<void> {
    const name = parseName(rawName);
    if (!(await this.storage.tx((r) => r.dbcreds.deleteRole(name)))) throw new NotFoundError(`no database role ${name}`);
  }

  async connectionRow(name: string): Promise<DbConnectionRow> {
    const c = await this.storage.dbcreds.connection(name);
    if (!c) throw new NotFoundError(`no database connection ${name}`);
    return c;
  }

  async roleRow(name: string): Promise<DbRoleRow> {
    const r = await this.storage.dbcreds.role(name);
    if (!r) throw new NotFoundError(`no database role ${name}`);
    return r;
  }

  /** The admin login of a connection, its password opened from the sealed configuration. */
  async login(c: DbConnectionRow): Promise<TargetLogin> {
    const row = await this.storage.configSecrets.get(passwordOwner(c.name));
    if (!row) throw new UnavailableError(`database connection ${c.name} has no stored password`);
    const plain = await this.keyring.openConfig(passwordOwner(c.name), { keyId: row.key_id, nonce: row.nonce, ciphertext: row.ciphertext });
    try {
      return { url: c.url, username: c.username, password: plain.toString('utf8') };
    } finally {
      plain.fill(0);
    }
  }
}
