import Router from '@koa/router';
import { z } from '../schema.js';

/** /healthz and /readyz; the mTLS port adds each check and details. */
export const Health = z
  .looseObject({
    status: z.enum(['ok', 'not ready']),
    checks: z.record(z.string(), z.boolean()).optional().describe('each readiness check (mTLS port only)'),
  })
  .meta({ id: 'Health' });

export interface Readiness {
  /** Each check: a name and whether it passes now. */
  checks(): Record<string, boolean> | Promise<Record<string, boolean>>;
  /** More to show where detail is on (the mTLS port), without failing readiness. */
  details?(): Record<string, unknown>;
}

/** /healthz: the process answers. /readyz: every check passes (503 otherwise). */
export function healthRoutes(readiness: Readiness, opts: { detail: boolean }): Router {
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    const checks = await readiness.checks();
    const ok = Object.values(checks).every(Boolean);
    ctx.status = ok ? 200 : 503;
    ctx.body = opts.detail ? { status: ok ? 'ok' : 'not ready', checks, ...readiness.details?.() } : { status: ok ? 'ok' : 'not ready' };
  });
  return router;
}
