import type { Context, Next } from 'koa';
import { SealedError } from '../errors.js';

/** What answers while sealed, on either port: liveness, readiness (not ready) and the seal routes. */
const OPEN_WHILE_SEALED = new Set(['GET /healthz', 'HEAD /healthz', 'GET /readyz', 'HEAD /readyz', 'GET /v1/sys/seal-status', 'PUT /v1/sys/unseal']);

/**
 * The one gate both ports put right after their error handler: while the
 * root key is not in memory every other request is a 503 `sealed`, before
 * any audit, authentication or handler could need the key.
 */
export function sealedGate(seal: { readonly sealed: boolean }) {
  return async function gateSealed(ctx: Context, next: Next): Promise<void> {
    if (seal.sealed && !OPEN_WHILE_SEALED.has(`${ctx.method} ${ctx.path}`)) throw new SealedError();
    await next();
  };
}
