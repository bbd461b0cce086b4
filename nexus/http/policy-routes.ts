import Router from '@koa/router';
import type { Context } from 'koa';
import type { Authorizer, Principal } from '../auth/principal.js';
import { ForbiddenError } from '../errors.js';
import type { PolicyService } from '../policy/service.js';
import { readJsonObject } from './body.js';

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
  router.get('/', (ctx) => {
    ctx.body = { policies: policies.list() };
  });
  router.get('/:name', (ctx) => {
    ctx.body = policies.get(ctx.params.name!);
  });
  router.put('/:name', async (ctx) => {
    const { policy, created } = policies.put(ctx.params.name!, await readJsonObject(ctx));
    ctx.status = created ? 201 : 200;
    ctx.body = policy;
  });
  router.delete('/:name', (ctx) => {
    policies.delete(ctx.params.name!);
    ctx.status = 204;
  });
  return router;
}
