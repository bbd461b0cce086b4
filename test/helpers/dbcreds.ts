// A target database for credential leases: the machine's PostgreSQL, a fresh
// database, an admin role with CREATEROLE (not a superuser) and a table it may
// grant reads on. Names are unique per suite.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import pg from 'pg';
import { createTestDatabase, sql, type TestDatabase } from './pg.js';

export interface Target {
  db: TestDatabase;
  /** Unique to this target: name credential roles with it, so their users carry it. */
  tag: string;
  /** postgres://127.0.0.1:5432/DB without credentials (what a connection stores). */
  url: string;
  admin: string;
  adminPassword: string;
  table: string;
  /** Roles on the server whose name starts with `prefix`. */
  users(prefix?: string): Promise<string[]>;
  /** A login as `user` (trust auth here: a dropped role is what refuses it). */
  login(user: string, password: string): Promise<pg.Client>;
  drop(): Promise<void>;
}

export async function createTarget(serverUrl: string): Promise<Target> {
  const db = await createTestDatabase(serverUrl);
  const tag = randomBytes(4).toString('hex');
  const admin = `nx_adm_${tag}`;
  const adminPassword = `adm-${randomBytes(12).toString('hex')}`;
  const table = `t_${tag}`;
  await sql(serverUrl, `CREATE ROLE ${admin} LOGIN CREATEROLE PASSWORD '${adminPassword}'`);
  await sql(db.url, `CREATE TABLE ${table} (v text); INSERT INTO ${table} VALUES ('hello'); GRANT SELECT ON ${table} TO ${admin} WITH GRANT OPTION`);
  const u = new URL(db.url);
  const url = `postgres://${u.hostname}:${u.port || 5432}${u.pathname}`;
  return {
    db,
    tag,
    url,
    admin,
    adminPassword,
    table,
    users: async (prefix = 'v_') => (await sql<{ rolname: string }>(serverUrl, 'SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY 1', [prefix])).map((r) => r.rolname),
    login: async (user, password) => {
      const c = new pg.Client({ host: u.hostname, port: Number(u.port || 5432), database: u.pathname.slice(1), user, password, connectionTimeoutMillis: 3000 });
      c.on('error', () => {});
      await c.connect();
      return c;
    },
    drop: async () => {
      await db.drop();
      // Users a failed test left behind on this server (they are cluster-wide).
      for (const r of await sql<{ rolname: string }>(serverUrl, 'SELECT rolname FROM pg_roles WHERE strpos(rolname, $1) > 0 AND rolname <> $2', [tag, admin])) {
        await sql(serverUrl, `DROP ROLE IF EXISTS "${r.rolname}"`).catch(() => {});
      }
      await sql(serverUrl, `DROP ROLE IF EXISTS ${admin}`).catch(() => {});
    },
  };
}

/** A server that speaks just enough of the PostgreSQL protocol to refuse every login (authentication failed). */
export async function refusingPostgres(): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer((s) => {
    s.once('data', () => {
      const fields = Buffer.concat([Buffer.from('SFATAL\0'), Buffer.from('C28P01\0'), Buffer.from('Mpassword authentication failed\0'), Buffer.from('\0')]);
      const head = Buffer.alloc(5);
      head.write('E', 0);
      head.writeInt32BE(fields.length + 4, 1);
      s.end(Buffer.concat([head, fields]));
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) };
}

/** A TCP relay to PostgreSQL that can be cut (the target becomes unreachable). */
export async function relay(port: number): Promise<{ port: number; cut(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    const up = net.connect(port, '127.0.0.1');
    sockets.add(s).add(up);
    s.pipe(up).pipe(s);
    s.on('error', () => up.destroy());
    up.on('error', () => s.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

type AdminCall = (method: string, path: string, body?: unknown) => Promise<{ status: number; text: string }>;

/**
 * A connection `name` to the target and a credential role per entry of
 * `roles`, each creating a user that may read the target's table (through
 * Nexus's admin API, as an operator sets them up).
 */
export async function putCredentialRoles(admin: AdminCall, target: Target, roles: string[], name = 'main'): Promise<void> {
  const conn = await admin('PUT', `/v1/db/connections/${name}`, { url: target.url, username: target.admin, password: target.adminPassword, allowed_roles: roles });
  if (conn.status !== 201 && conn.status !== 200) throw new Error(`connection ${name}: ${conn.status} ${conn.text}`);
  for (const role of roles) {
    const r = await admin('PUT', `/v1/db/roles/${role}`, {
      connection: name,
      creation_statements: ['CREATE ROLE {{name}} LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}', `GRANT SELECT ON ${target.table} TO {{name}}`],
    });
    if (r.status !== 201 && r.status !== 200) throw new Error(`role ${role}: ${r.status} ${r.text}`);
  }
}
