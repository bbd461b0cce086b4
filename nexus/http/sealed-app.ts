import Router from '@koa/router';
import Koa from 'koa';
import { spiffeAuth } from '../auth/spiffe-auth.js';
import type { TrustBundle } from '../auth/trust-bundle.js';
import type { Logger } from '../log.js';
import type { SealController } from '../seal/seal.js';
import { errorHandling } from './errors.js';
import { healthRoutes } from './health.js';
import { sealRoutes } from './seal-routes.js';
import { sealedGate } from './sealed-gate.js';

/**
 * What a port answers before the first unseal, when no part of the core
 * exists yet: the same gate as the full apps, health (never ready), and on
 * the mTLS port the seal routes. The full apps replace these on unseal.
 */
export function buildSealedApp(deps: { log: Logger; port: 'mtls' | 'oidc'; seal: SealController; spiffe?: { trustDomain: string; trust: TrustBundle } }): Koa {
  const app = new Koa();
  app.proxy = false;
  app.silent = true;
  app.use(errorHandling(deps.log, deps.port === 'oidc' ? { port: 'oidc', redact401: true } : { port: 'mtls' }));
  app.use(sealedGate(deps.seal));
  if (deps.spiffe) app.use(spiffeAuth(deps.spiffe.trustDomain, deps.spiffe.trust));
  const routers: Router[] = [healthRoutes({ checks: () => ({ root_key: false }) }, { detail: deps.port === 'mtls' })];
  if (deps.port === 'mtls') routers.push(sealRoutes(deps.seal, null));
  for (const r of routers) {
    app.use(r.routes());
    app.use(r.allowedMethods());
  }
  return app;
}
