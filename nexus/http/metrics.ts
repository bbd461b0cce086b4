import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type { Authorizer, Principal } from '../auth/principal.js';
import { ForbiddenError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { routeTemplate } from './audit.js';

/** Outermost middleware: counts and times every request by method, route template and final status. */
export function measureRequests(metrics: Metrics, port: string) {
  return async function measure(ctx: Context, next: Next): Promise<void> {
    const t0 = process.hrtime.bigint();
    try {
      await next();
    } finally {
      metrics.http.record(port, ctx.method, routeTemplate(ctx), ctx.status, Number(process.hrtime.bigint() - t0) / 1e9);
    }
  };
}

/** GET /metrics: Prometheus text, for identities with the metrics or admin permission. */
export function metricsRoutes(metrics: Metrics, deps: { authz: Authorizer; principal(ctx: Context): Principal }): Router {
  const router = new Router();
  router.get('/metrics', async (ctx) => {
    const p = deps.principal(ctx);
    if (!deps.authz.allowsGlobal(p, 'metrics') && !deps.authz.allowsGlobal(p, 'admin')) throw new ForbiddenError('permission denied: metrics');
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });
  return router;
}
