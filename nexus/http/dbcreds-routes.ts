import Router from '@koa/router';
import type { Context } from 'koa';
import type { Authorizer, Principal } from '../auth/principal.js';
import type { DbCreds } from '../dbcreds/index.js';
import type { LeaseCaller } from '../dbcreds/leases.js';
import { LeaseRenewInput, LeaseRevokeInput, LeaseRevokePrefixInput } from '../dbcreds/schema.js';
import { BadRequestError, ForbiddenError } from '../errors.js';
import { parseName } from '../policy/schema.js';
import { changeAudited, noteAudit, noteObject } from './audit.js';
import { readBody, readJson } from './body.js';
import type { RequestState } from './errors.js';
import { requireAdmin } from './policy-routes.js';
import { queryOne } from './secrets-routes.js';

export interface DbCredsRouteDeps {
  authz: Authorizer;
  principal(ctx: Context): Principal;
}

/** `?ttl=S`: whole seconds. */
export function ttlQuery(ctx: Context): number | undefined {
  const raw = queryOne(ctx, 'ttl');
  if (raw === undefined) return undefined;
  if (!/^[1-9][0-9]{0,8}$/.test(raw)) throw new BadRequestError('ttl', 'ttl must be a whole number of seconds');
  return Number(raw);
}

/** The policy path a credential role is read under (`read` on it mints a user). */
export const credsPath = (role: string) => `db/creds/${role}`;

/** Database connections, credential roles, credentials and leases on the mTLS port. */
export function dbCredsRoutes(db: DbCreds, deps: DbCredsRouteDeps): Router[] {
  const admin = new Router();
  admin.use(['/v1/db/connections', '/v1/db/roles', '/v1/leases/revoke-prefix'], requireAdmin(deps));
  admin.get('/v1/db/connections', async (ctx) => {
    noteObject(ctx, 'db-connection', 'list');
    ctx.body = { connections: await db.config.listConnections() };
  });
  admin.get('/v1/db/connections/:name', async (ctx) => {
    noteObject(ctx, 'db-connection', 'read', ctx.params.name!);
    ctx.body = await db.config.getConnection(ctx.params.name!);
  });
  admin.put('/v1/db/connections/:name', async (ctx) => {
    const body = await readJson(ctx);
    // The digest leaves the password out: a record must not let anyone test guesses against it.
    const { password: _p, ...described } = (body ?? {}) as Record<string, unknown>;
    noteObject(ctx, 'db-connection', 'put', ctx.params.name!, described);
    const { connection, created } = await changeAudited(ctx, () => db.config.putConnection(ctx.params.name!, body));
    ctx.status = created ? 201 : 200;
    ctx.body = connection;
  });
  admin.delete('/v1/db/connections/:name', async (ctx) => {
    noteObject(ctx, 'db-connection', 'delete', ctx.params.name!);
    await changeAudited(ctx, () => db.config.deleteConnection(ctx.params.name!));
    ctx.status = 204;
  });
  admin.get('/v1/db/roles', async (ctx) => {
    noteObject(ctx, 'db-role', 'list');
    ctx.body = { roles: await db.config.listRoles() };
  });
  admin.get('/v1/db/roles/:name', async (ctx) => {
    noteObject(ctx, 'db-role', 'read', ctx.params.name!);
    ctx.body = await db.config.getRole(ctx.params.name!);
  });
  admin.put('/v1/db/roles/:name', async (ctx) => {
    const body = await readJson(ctx);
    noteObject(ctx, 'db-role', 'put', ctx.params.name!, body);
    const { role, created } = await changeAudited(ctx, () => db.config.putRole(ctx.params.name!, body));
    ctx.status = created ? 201 : 200;
    ctx.body = role;
  });
  admin.delete('/v1/db/roles/:name', async (ctx) => {
    noteObject(ctx, 'db-role', 'delete', ctx.params.name!);
    await changeAudited(ctx, () => db.config.deleteRole(ctx.params.name!));
    ctx.status = 204;
  });
  admin.put('/v1/leases/revoke-prefix', async (ctx) => {
    const { prefix } = await readBody(ctx, LeaseRevokePrefixInput);
    noteAudit(ctx, { action: 'lease.revoke-prefix', path: prefix });
    ctx.body = await changeAudited(ctx, () => db.leases.revokePrefix(prefix, mtlsCaller(ctx, deps, true)));
  });

  const leases = new Router();
  leases.get('/v1/db/creds/:role', async (ctx) => {
    const role = parseName(ctx.params.role);
    const path = credsPath(role);
    noteAudit(ctx, { action: 'db.creds', path });
    if (!deps.authz.allows(deps.principal(ctx), 'read', path)) throw new ForbiddenError(`permission denied: read on ${path}`);
    const ttl = ttlQuery(ctx);
    ctx.body = await changeAudited(ctx, () => db.leases.issue(role, mtlsCaller(ctx, deps), ttl));
  });
  leases.get('/v1/leases', async (ctx) => {
    if (!deps.authz.allowsGlobal(deps.principal(ctx), 'admin')) throw new ForbiddenError('permission denied: admin');
    const prefix = queryOne(ctx, 'prefix') ?? 'db/creds/';
    noteAudit(ctx, { action: 'lease.list', path: prefix });
    ctx.body = { leases: await db.leases.list(prefix) };
  });
  // Leases belong to callers that may read some db/creds path (or admins); nobody else gets past here to a body.
  leases.use(['/v1/leases/renew', '/v1/leases/revoke'], async (ctx, next) => {
    const p = deps.principal(ctx);
    if (!deps.authz.allowsGlobal(p, 'admin') && !deps.authz.mayEver(p, 'read')) throw new ForbiddenError('permission denied: no lease can be yours');
    await next();
  });
  leases.put('/v1/leases/renew', async (ctx) => {
    const input = await readBody(ctx, LeaseRenewInput);
    noteAudit(ctx, { action: 'lease.renew', path: input.lease_id });
    ctx.body = await changeAudited(ctx, () => db.leases.renew(input.lease_id, input.increment, mtlsCaller(ctx, deps)));
  });
  leases.put('/v1/leases/revoke', async (ctx) => {
    const input = await readBody(ctx, LeaseRevokeInput);
    noteAudit(ctx, { action: 'lease.revoke', path: input.lease_id });
    await changeAudited(ctx, () => db.leases.revoke(input.lease_id, mtlsCaller(ctx, deps)));
    ctx.status = 204;
  });
  return [admin, leases];
}

/** An mTLS caller: acts on its own leases (by SPIFFE ID), or on any as admin. */
function mtlsCaller(ctx: Context, deps: DbCredsRouteDeps, admin?: boolean): LeaseCaller {
  const principal = deps.principal(ctx);
  return {
    principal,
    port: 'mtls',
    tokenHash: null,
    tokenExpiresAt: null,
    admin: admin ?? deps.authz.allowsGlobal(principal, 'admin'),
    mayRead: (path) => deps.authz.allows(principal, 'read', path),
    requestId: (ctx.state as RequestState).requestId,
  };
}
