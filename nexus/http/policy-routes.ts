import Router from '@koa/router';
import type { Context } from 'koa';
import type { Authorizer, Principal } from '../auth/principal.js';
import { ForbiddenError } from '../errors.js';
import type { PolicyService } from '../policy/service.js';
import { changeAudited, noteObject } from './audit.js';
import { readJson } from './body.js';

export interface AdminDeps {
  authz: Authorizer;
  principal(ctx: Context): Principal;
}

/** Middleware for admin-only routers: the `admin` permission, whatever the path. */
export function requireAdmin(deps: AdminDeps) {
  return async (ctx: Context, next: () => Promise<unknown>) => {
    if (!deps.authz.allowsGlobal(deps.principal(ctx), 'admin')) throw new ForbiddenError('permission denied: admin');
    await next();
  };
}

export function policyRoutes(policies: PolicyService, deps: AdminDeps): Router {
  const router = new Router({ prefix: '/v1/policies' });
  router.use(requireAdmin(deps));
  router.get('/', async (ctx) => {
    noteObject(ctx, 'policy', 'list');
    ctx.body = { policies: await policies.list() };
  });
  router.get('/:name', async (ctx) => {
    noteObject(ctx, 'policy', 'read', ctx.params.name!);
    ctx.body = await policies.get(ctx.params.name!);
  });
  router.put('/:name', async (ctx) => {
    const body = await readJson(ctx);
    noteObject(ctx, 'policy', 'put', ctx.params.name!, body);
    const { policy, created } = await changeAudited(ctx, () => policies.put(ctx.params.name!, body));
    ctx.status = created ? 201 : 200;
    ctx.body = policy;
  });
  router.delete('/:name', async (ctx) => {
    noteObject(ctx, 'policy', 'delete', ctx.params.name!);
    await changeAudited(ctx, () => policies.delete(ctx.params.name!));
    ctx.status = 204;
  });
  return router;
}
