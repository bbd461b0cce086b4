import Router from '@koa/router';
import type { Context } from 'koa';
import type { Authorizer, Permission, Principal } from '../auth/principal.js';
import { BadRequestError, ForbiddenError } from '../errors.js';
import { listScope } from '../policy/list-scope.js';
import { parsePrefix, parseSecretPath, parseVersion } from '../secrets/rules.js';
import type { SecretsService } from '../secrets/service.js';
import type { ListOptions, VersionsOutcome } from '../secrets/types.js';
import { changeAudited, noteAudit } from './audit.js';
import { ListLimitQuery, PatchSecretInput, PutSecretInput, RollbackInput, VersionList, VersionsInput } from '../secrets/schema.js';
import { readBody } from './body.js';
import { parseInput } from '../schema.js';

export const SECRETS_PREFIX = '/v1/secrets/';

export interface SecretsRoutesDeps {
  secrets: SecretsService;
  authz: Authorizer;
  principal(ctx: Context): Principal;
}

type Op = 'read' | 'write' | 'patch' | 'rollback' | 'delete' | 'undelete' | 'destroy' | 'metadata' | 'purge';

/**
 * `{path}` and an optional `:verb` from the raw (undecoded) URL path. A
 * percent sign is refused outright: no valid path needs one, and decoding
 * `%2f` or `%2e` would let a request name a path other than the one it shows.
 */
export function secretTarget(ctx: Context, prefix = SECRETS_PREFIX): { path: string; verb: string | null } {
  const raw = ctx.path.slice(prefix.length);
  if (raw.includes('%')) throw new BadRequestError('path.encoded', 'percent-encoded characters are not allowed in a secret path');
  const colon = raw.indexOf(':');
  const path = colon < 0 ? raw : raw.slice(0, colon);
  return { path: parseSecretPath(path), verb: colon < 0 ? null : raw.slice(colon + 1) };
}

const NEEDS: Record<Op, Permission[]> = {
  read: ['read'],
  metadata: ['read'],
  write: ['write'],
  // A patch merges into the latest version: a read-modify-write, and its
  // outcome (404 for a missing or deleted latest version) would tell a
  // write-only caller what it may not read.
  patch: ['write', 'read'],
  // A rollback reads the old version and writes it again.
  rollback: ['write', 'read'],
  delete: ['delete'],
  undelete: ['delete'],
  destroy: ['delete'],
  purge: ['delete'],
};

const VERBS = ['undelete', 'destroy', 'metadata', 'rollback'];

// "METHOD verb" -> operation; built once, not per request.
const OPS: Record<string, Op> = {
  'GET ': 'read',
  'PUT ': 'write',
  'PATCH ': 'patch',
  'DELETE ': 'delete',
  'POST undelete': 'undelete',
  'POST destroy': 'destroy',
  'POST rollback': 'rollback',
  'GET metadata': 'metadata',
  'DELETE metadata': 'purge',
};

function opFor(method: string, verb: string | null): Op {
  const op = OPS[`${method} ${verb ?? ''}`];
  if (!op) {
    if (verb !== null && !VERBS.includes(verb)) throw new BadRequestError('verb', `unknown operation :${verb}`);
    throw Object.assign(new BadRequestError('method', `method ${method} is not allowed here`), { status: 405 });
  }
  return op;
}

/** Every permission in `needs`, decided before any storage lookup: the same 403 whether or not the path exists. */
export function requirePermissions(allows: (action: Permission, path: string) => boolean, needs: Permission[], path: string): void {
  for (const action of needs) {
    if (!allows(action, path)) throw new ForbiddenError(`permission denied: ${action} on ${path}`);
  }
}

/** One query parameter; repeating it is a 400 rather than a silent pick. */
export function queryOne(ctx: Context, name: string): string | undefined {
  const v = ctx.query[name];
  if (Array.isArray(v)) throw new BadRequestError(name, `${name} given more than once`);
  return v;
}

/** `?version=N` or `?versions=1,2,...` (not both); undefined = the latest. */
function versionsQuery(ctx: Context): number[] | undefined {
  const one = queryOne(ctx, 'version');
  const many = queryOne(ctx, 'versions');
  if (one !== undefined && many !== undefined) throw new BadRequestError('versions', 'give version or versions, not both');
  if (one !== undefined) return [parseVersion(one)];
  return many === undefined ? undefined : parseInput(VersionList, many.split(','), 'versions');
}

/** 204 when every named version was changed; otherwise 200 naming those left alone and why. */
function answerVersions(ctx: Context, outcome: VersionsOutcome): void {
  if (outcome.skipped.length === 0) ctx.status = 204;
  else ctx.body = outcome;
}

/**
 * PUT, PATCH and :rollback on either port: the body read (at most `limit`
 * bytes), the intent recorded, one new version written, `{path, version}`
 * answered. A caller who may not read the path (`mayRead`; only a PUT gets
 * here without it) learns nothing about the path: `cas` is refused before
 * any lookup (its outcome would tell whether the path exists and at which
 * version), and the answer is 200 `{path}` whether it created the path or not.
 */
export async function writeVersion(ctx: Context, secrets: SecretsService, op: 'write' | 'patch' | 'rollback', path: string, mayRead: boolean, limit?: number): Promise<void> {
  let write: () => ReturnType<SecretsService['put']>;
  let cas: number | undefined;
  const revealVersion = mayRead;
  if (op === 'rollback') {
    const body = await readBody(ctx, RollbackInput, limit);
    noteAudit(ctx, { action: op, path, version: body.version });
    cas = body.cas;
    write = () => secrets.rollback(path, body.version, { cas, revealVersion });
  } else if (op === 'patch') {
    const body = await readBody(ctx, PatchSecretInput, limit);
    cas = body.cas;
    write = () => secrets.patch(path, body.data, { cas, revealVersion });
  } else {
    const body = await readBody(ctx, PutSecretInput, limit);
    cas = body.cas;
    write = () => secrets.put(path, body.data, { cas, revealVersion });
  }
  if (cas !== undefined && !mayRead) throw new ForbiddenError(`permission denied: cas needs read on ${path} (without it, write without cas)`);
  const r = await changeAudited(ctx, write);
  ctx.status = r.created && mayRead ? 201 : 200;
  ctx.body = mayRead ? { path: r.path, version: r.version } : { path: r.path };
}

/**
 * `GET /v1/secrets` on either port: 403 unless the caller may list (`needs`) something
 * (decided before the query is even read), then prefix, limit and cursor, and
 * the scope of the caller's list globs.
 */
export function listRequest(ctx: Context, mayList: boolean, globs: string[], needs: Permission = 'list'): ListOptions {
  noteAudit(ctx, { action: 'list', path: typeof ctx.query.prefix === 'string' ? ctx.query.prefix : '' });
  if (!mayList) throw new ForbiddenError(`permission denied: ${needs}`);
  const limit = queryOne(ctx, 'limit');
  return {
    prefix: parsePrefix(queryOne(ctx, 'prefix')),
    limit: limit === undefined ? undefined : parseInput(ListLimitQuery, limit, 'limit'),
    cursor: queryOne(ctx, 'cursor') ?? null,
    scope: listScope(globs),
  };
}

/** The secrets API of the mTLS port: thin handlers over SecretsService. */
export function secretsRoutes(deps: SecretsRoutesDeps): Router {
  // strict: `/v1/secrets/` is a secret path (an empty one, refused), not the list route.
  const router = new Router({ strict: true });
  const { secrets } = deps;

  router.get('/v1/secrets', async (ctx) => {
    const p = deps.principal(ctx);
    ctx.body = await secrets.list(listRequest(ctx, deps.authz.mayEver(p, 'list'), deps.authz.globs(p, 'list')));
  });

  // Explicit methods (not router.all), so the served routes match the OpenAPI document.
  router.register('/v1/secrets/{*rest}', ['GET', 'PUT', 'PATCH', 'DELETE', 'POST'], async (ctx) => {
    const { path, verb } = secretTarget(ctx);
    const op = opFor(ctx.method, verb);
    const v = queryOne(ctx, 'version');
    noteAudit(ctx, { action: op, path, ...(v && /^\d+$/.test(v) ? { version: Number(v) } : {}) });
    const p = deps.principal(ctx);
    requirePermissions((action, target) => deps.authz.allows(p, action, target), NEEDS[op], path);
    switch (op) {
      case 'read':
        ctx.body = await secrets.get(path, queryOne(ctx, 'version'));
        return;
      case 'metadata':
        ctx.body = await secrets.metadata(path);
        return;
      case 'write':
      case 'patch':
      case 'rollback':
        await writeVersion(ctx, secrets, op, path, deps.authz.allows(p, 'read', path));
        return;
      case 'purge':
        await changeAudited(ctx, () => secrets.purge(path));
        ctx.status = 204;
        return;
      case 'delete': {
        const versions = versionsQuery(ctx);
        if (versions) noteAudit(ctx, { action: op, path, versions });
        answerVersions(ctx, await changeAudited(ctx, () => secrets.delete(path, versions)));
        return;
      }
      case 'undelete':
      case 'destroy': {
        const { versions } = await readBody(ctx, VersionsInput);
        noteAudit(ctx, { action: op, path, versions });
        answerVersions(ctx, await changeAudited(ctx, () => (op === 'undelete' ? secrets.undelete(path, versions) : secrets.destroy(path, versions))));
        return;
      }
    }
  });
  return router;
}
