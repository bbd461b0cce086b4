import Router from '@koa/router';
import type { Context } from 'koa';
import type { Authorizer, Permission, Principal } from '../auth/principal.js';
import { BadRequestError, ForbiddenError } from '../errors.js';
import { parsePrefix, parseSecretPath } from '../secrets/rules.js';
import type { SecretsService } from '../secrets/service.js';
import type { ListOptions } from '../secrets/types.js';
import { changeAudited, noteAudit } from './audit.js';
import { PutSecretInput, VersionsInput } from '../secrets/schema.js';
import { readBody } from './body.js';

export const SECRETS_PREFIX = '/v1/secrets/';

export interface SecretsRoutesDeps {
  secrets: SecretsService;
  authz: Authorizer;
  principal(ctx: Context): Principal;
}

type Op = 'read' | 'write' | 'delete' | 'undelete' | 'destroy' | 'metadata';

/**
 * `{path}` and an optional `:verb` from the raw (undecoded) URL path. A
 * percent sign is refused outright: no valid path needs one, and decoding
 * `%2f` or `%2e` would let a request name a path other than the one it shows.
 */
export function secretTarget(ctx: Context): { path: string; verb: string | null } {
  const raw = ctx.path.slice(SECRETS_PREFIX.length);
  if (raw.includes('%')) throw new BadRequestError('path.encoded', 'percent-encoded characters are not allowed in a secret path');
  const colon = raw.indexOf(':');
  const path = colon < 0 ? raw : raw.slice(0, colon);
  return { path: parseSecretPath(path), verb: colon < 0 ? null : raw.slice(colon + 1) };
}

const NEEDS: Record<Op, Permission> = { read: 'read', metadata: 'read', write: 'write', delete: 'delete', undelete: 'delete', destroy: 'delete' };

// "METHOD verb" -> operation; built once, not per request.
const OPS: Record<string, Op> = {
  'GET ': 'read',
  'PUT ': 'write',
  'DELETE ': 'delete',
  'POST undelete': 'undelete',
  'POST destroy': 'destroy',
  'GET metadata': 'metadata',
};

function opFor(method: string, verb: string | null): Op {
  const op = OPS[`${method} ${verb ?? ''}`];
  if (!op) {
    if (verb !== null && !['undelete', 'destroy', 'metadata'].includes(verb)) throw new BadRequestError('verb', `unknown operation :${verb}`);
    throw Object.assign(new BadRequestError('method', `method ${method} is not allowed here`), { status: 405 });
  }
  return op;
}

function authorize(deps: SecretsRoutesDeps, ctx: Context, action: Permission, path: string): Principal {
  const p = deps.principal(ctx);
  // Decided before any storage lookup: the same 403 whether or not the path exists.
  if (!deps.authz.allows(p, action, path)) throw new ForbiddenError(`permission denied: ${action} on ${path}`);
  return p;
}

/** One query parameter; repeating it is a 400 rather than a silent pick. */
export function queryOne(ctx: Context, name: string): string | undefined {
  const v = ctx.query[name];
  if (Array.isArray(v)) throw new BadRequestError(name, `${name} given more than once`);
  return v;
}

/**
 * `GET /v1/secrets` on either port: 403 unless the caller may list something
 * (decided before the query is even read), then prefix, limit and cursor, and
 * the caller's per-path list filter.
 */
export function listRequest(ctx: Context, mayList: boolean, allow: (path: string) => boolean): ListOptions {
  noteAudit(ctx, { action: 'list', path: typeof ctx.query.prefix === 'string' ? ctx.query.prefix : '' });
  if (!mayList) throw new ForbiddenError('permission denied: list');
  const limitRaw = queryOne(ctx, 'limit');
  if (limitRaw !== undefined && !/^\d{1,5}$/.test(limitRaw)) throw new BadRequestError('limit', 'limit must be an integer from 1 to 1000');
  return {
    prefix: parsePrefix(queryOne(ctx, 'prefix')),
    limit: limitRaw === undefined ? undefined : Number(limitRaw),
    cursor: queryOne(ctx, 'cursor') ?? null,
    allow,
  };
}

/** The secrets API of the mTLS port: thin handlers over SecretsService. */
export function secretsRoutes(deps: SecretsRoutesDeps): Router {
  // strict: `/v1/secrets/` is a secret path (an empty one, refused), not the list route.
  const router = new Router({ strict: true });
  const { secrets } = deps;

  router.get('/v1/secrets', async (ctx) => {
    const p = deps.principal(ctx);
    ctx.body = await secrets.list(listRequest(ctx, deps.authz.mayEver(p, 'list'), (path) => deps.authz.allows(p, 'list', path)));
  });

  // Explicit methods (not router.all), so the served routes match the OpenAPI document.
  router.register('/v1/secrets/{*rest}', ['GET', 'PUT', 'DELETE', 'POST'], async (ctx) => {
    const { path, verb } = secretTarget(ctx);
    const op = opFor(ctx.method, verb);
    const v = queryOne(ctx, 'version');
    noteAudit(ctx, { action: op, path, ...(v && /^\d+$/.test(v) ? { version: Number(v) } : {}) });
    authorize(deps, ctx, NEEDS[op], path);
    switch (op) {
      case 'read':
        ctx.body = await secrets.get(path, queryOne(ctx, 'version'));
        return;
      case 'metadata':
        ctx.body = await secrets.metadata(path);
        return;
      case 'write': {
        const body = await readBody(ctx, PutSecretInput);
        const revealVersion = deps.authz.allows(deps.principal(ctx), 'read', path);
        const r = await changeAudited(ctx, () => secrets.put(path, body.data, { cas: body.cas, revealVersion }));
        ctx.status = r.created ? 201 : 200;
        ctx.body = { path: r.path, version: r.version };
        return;
      }
      case 'delete':
        await changeAudited(ctx, () => secrets.delete(path, queryOne(ctx, 'version')));
        ctx.status = 204;
        return;
      case 'undelete': {
        const { versions } = await readBody(ctx, VersionsInput);
        await changeAudited(ctx, () => secrets.undelete(path, versions));
        ctx.status = 204;
        return;
      }
      case 'destroy': {
        const { versions } = await readBody(ctx, VersionsInput);
        await changeAudited(ctx, () => secrets.destroy(path, versions));
        ctx.status = 204;
        return;
      }
    }
  });
  return router;
}
