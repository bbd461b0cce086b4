import Router from '@koa/router';
import Koa from 'koa';
import type { AdminRouteDeps } from '../auth/plugin.js';
import { principalOf, spiffeAuth } from '../auth/spiffe-auth.js';
import type { TrustBundle } from '../auth/trust-bundle.js';
import type { Logger } from '../log.js';
import type { LogBudget } from '../log-budget.js';
import type { PolicyEngine } from '../policy/engine.js';
import type { PolicyService } from '../policy/service.js';
import type { SecretsService } from '../secrets/service.js';
import type { AuditTrail } from '../audit/trail.js';
import type { Metrics } from '../metrics.js';
import { auditRequests } from './audit.js';
import { measureRequests, metricsRoutes } from './metrics.js';
import { mtlsDocument, type Paths } from './openapi.js';
import { errorHandling } from './errors.js';
import { healthRoutes, type Readiness } from './health.js';
import { policyRoutes } from './policy-routes.js';
import { secretsRoutes } from './secrets-routes.js';
import { dbCredsRoutes } from './dbcreds-routes.js';
import { dbCredsPaths } from './dbcreds-openapi.js';
import type { DbCreds } from '../dbcreds/index.js';
import type { SealController } from '../seal/seal.js';
import { sealedGate } from './sealed-gate.js';
import { sealPaths, sealRoutes } from './seal-routes.js';
import { signalsRoutes } from './signals-routes.js';
import type { SignalService } from '../signals/service.js';

export interface MtlsAppDeps {
  log: Logger;
  trustDomain: string;
  /** The bundle client SVIDs verify against (replaced by the listener on reload). */
  trust: TrustBundle;
  secrets: SecretsService;
  engine: PolicyEngine;
  policies: PolicyService;
  readiness: Readiness;
  seal: SealController;
  audit: AuditTrail;
  metrics: Metrics;
  /** Access signals: fed by the audit layer, listed at GET /v1/signals. */
  signals?: Pick<SignalService, 'engine' | 'requests' | 'list'>;
  /** Where SVIDs refused after the handshake are logged (rate-limited). */
  refusals?: LogBudget;
  /** OpenAPI paths of the plugins' admin routes. */
  extraOpenApi?: Paths;
  /** Database credentials (absent: their routes are not served). */
  dbcreds?: DbCreds;
  /** Admin routers contributed by auth plugins. */
  extraRoutes?: (deps: AdminRouteDeps) => Router[];
}

/** The mTLS port's app: errors and ids, the seal, then SPIFFE identity, then routes. */
export function buildMtlsApp(deps: MtlsAppDeps): Koa {
  const app = new Koa();
  app.proxy = false;
  app.silent = true;
  const access = { authz: deps.engine, principal: principalOf };
  app.use(measureRequests(deps.metrics, 'mtls'));
  app.use(errorHandling(deps.log, { port: 'mtls' }));
  app.use(sealedGate(deps.seal));
  app.use(auditRequests(deps.audit, 'mtls', deps.signals));
  app.use(spiffeAuth(deps.trustDomain, deps.trust, (remote, reason) => deps.refusals?.info({ remote, reason, stage: 'svid' })));
  const doc = mtlsDocument({ ...sealPaths(), ...(deps.dbcreds ? dbCredsPaths() : {}), ...(deps.extraOpenApi ?? {}) });
  const openapi = new Router();
  openapi.get('/openapi.json', (ctx) => {
    ctx.body = doc;
  });
  // The secrets router first: a read, the hot route, is matched by the first router it meets.
  const routers = [
    secretsRoutes({ secrets: deps.secrets, ...access }),
    healthRoutes(deps.readiness, { detail: true }),
    openapi,
    policyRoutes(deps.policies, access),
    metricsRoutes(deps.metrics, access),
    ...(deps.dbcreds ? dbCredsRoutes(deps.dbcreds, access) : []),
    sealRoutes(deps.seal, access),
    ...(deps.signals ? [signalsRoutes((since) => deps.signals!.list(since), access)] : []),
    ...(deps.extraRoutes?.(access) ?? []),
  ];
  for (const router of routers) {
    app.use(router.routes());
    app.use(router.allowedMethods());
  }
  return app;
}
