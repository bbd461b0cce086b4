import Router from '@koa/router';
import { BadRequestError, ForbiddenError } from '../errors.js';
import type { Signal } from '../signals/types.js';
import { noteAudit } from './audit.js';
import type { AdminDeps } from './policy-routes.js';
import { queryOne } from './secrets-routes.js';

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;
const DEFAULT_SINCE_S = 3600;

/** `since`: an RFC 3339 time, or seconds before now (default an hour); ms since the epoch. */
export function parseSince(raw: string | undefined, now = Date.now()): number {
  if (raw === undefined) return now - DEFAULT_SINCE_S * 1000;
  if (/^\d{1,10}$/.test(raw)) return now - Number(raw) * 1000;
  const t = RFC3339.test(raw) ? Date.parse(raw) : NaN;
  if (Number.isNaN(t)) throw new BadRequestError('since', 'since must be an RFC 3339 time or a number of seconds');
  return t;
}

/** GET /v1/signals: recent access signals, for identities with the admin or metrics permission. */
export function signalsRoutes(list: (sinceMs: number) => Promise<Signal[]>, deps: AdminDeps): Router {
  const router = new Router();
  router.get('/v1/signals', async (ctx) => {
    noteAudit(ctx, { action: 'signals.list' });
    const p = deps.principal(ctx);
    if (!deps.authz.allowsGlobal(p, 'metrics') && !deps.authz.allowsGlobal(p, 'admin')) throw new ForbiddenError('permission denied: metrics');
    ctx.body = { signals: await list(parseSince(queryOne(ctx, 'since'))) };
  });
  return router;
}
