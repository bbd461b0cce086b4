import Router from '@koa/router';
import Koa, { type Context, type Middleware, type Next } from 'koa';
import type { Authorizer, OidcPrincipal, Permission, Principal } from '../../nexus/auth/principal.js';
import { BadRequestError, ForbiddenError, RateLimitedError, TooLargeError, UnauthorizedError } from '../../nexus/errors.js';
import type { AuditTrail } from '../../nexus/audit/trail.js';
import { auditRequests, changeAudited, noteAudit } from '../../nexus/http/audit.js';
import { measureRequests } from '../../nexus/http/metrics.js';
import type { Metrics } from '../../nexus/metrics.js';
import type { RequestSignals } from '../../nexus/signals/engine.js';
import { readBody, readRaw } from '../../nexus/http/body.js';
import { JsonObject } from '../../nexus/schema.js';
import { errorHandling } from '../../nexus/http/errors.js';
import { healthRoutes, type Readiness } from '../../nexus/http/health.js';
import { listRequest, queryOne, requirePermissions, SECRETS_PREFIX, secretTarget, writeVersion } from '../../nexus/http/secrets-routes.js';
import type { Logger } from '../../nexus/log.js';
import { parseName } from '../../nexus/policy/schema.js';
import type { SecretsService } from '../../nexus/secrets/service.js';
import type { SecretVersion } from '../../nexus/secrets/types.js';
import { issueToken, revokeToken, TOKEN_PREFIX, TokenPrincipals, type CurrentConfig } from './exchange.js';
import type { DbCreds } from '../../nexus/dbcreds/index.js';
import type { LeaseCaller } from '../../nexus/dbcreds/leases.js';
import { LeaseRenewInput, LeaseRevokeInput } from '../../nexus/dbcreds/schema.js';
import { credsPath, ttlQuery } from '../../nexus/http/dbcreds-routes.js';
import type { RequestState } from '../../nexus/http/errors.js';
import { oidcPortDocument } from './openapi.js';
import { CI_EVENT_ROUTES, ciEventRoutes } from './ci-event-routes.js';
import type { CiEvents } from './ci-events.js';
import { loadTools, toolRoutes } from './tools.js';
import { REVOKE_SELF, VAULT_LEASE_RENEW, VAULT_LEASE_REVOKE, VAULT_LOGIN, vaultErrors, vaultRoutes, vaultToken, type Exchanged } from './vault.js';
import type { IssuerRegistry } from './issuers.js';
import { claimedIssuer, retryAfter, tenantOf, type TokenBuckets } from './limits.js';
import { explainRoles, noRoleReason } from './explain.js';
import { clockSkewRefusal } from './skew.js';
import { grantAllows, resolveRoles, tenantClaimValues } from './roles.js';
import { subtreeWithData } from './subtree.js';
import type { OidcStore } from './store.js';
import { TokenRequest } from './schema.js';
import type { RoleConfig } from './types.js';
import type { VerifiedJwtCache } from './jwt-cache.js';
import { MAX_TOKEN_BYTES, type VerifiedToken } from './verify.js';

export interface OidcAppDeps {
  log: Logger;
  secrets: SecretsService;
  store: OidcStore;
  registry: IssuerRegistry;
  jwts: VerifiedJwtCache;
  roles(): RoleConfig[];
  failedAuth: TokenBuckets;
  /** Requests per tenant (limits.ts, tenantOf). */
  perTenant: TokenBuckets;
  readiness: Readiness;
  audit: AuditTrail;
  metrics: Metrics;
  /** Access signals, fed by this port's audit layer. */
  signals?: RequestSignals;
  /** The Vault-compatible CI routes (NEXUS_OIDC_VAULT_COMPAT). */
  vaultCompat: boolean;
  /** Database credentials: db/creds and leases of the caller's own token. */
  dbcreds?: DbCreds;
  /** The CI platforms' end-of-work webhooks (POST /v1/ci/events/*). */
  ciEvents: CiEvents;
  /** Brings roles() up to date before a request is authorized (set when replicas share the database). */
  fresh?: () => Promise<void>;
  /** The core's sealed gate: 503 `sealed` while the root key is not in memory. */
  sealGate?: Middleware;
}

interface OidcState {
  principal?: OidcPrincipal;
}

/** Decisions from the grants the principal's roles carry; admin and metrics never. */
export const grantsAuthorizer: Authorizer = {
  allows: (p: Principal, action: Permission, path: string) => p.kind === 'oidc' && grantAllows(p.grants, action, path),
  allowsGlobal: () => false,
  mayEver: (p: Principal, action: Permission) => p.kind === 'oidc' && p.grants.some((g) => g.permissions.includes(action)),
  globs: (p: Principal, action: Permission) => (p.kind === 'oidc' ? p.grants.filter((g) => g.permissions.includes(action)).map((g) => g.path) : []),
};

const TOKEN_BODY_LIMIT = MAX_TOKEN_BYTES + 1024;
const WRITE_BODY_LIMIT = 80 * 1024;

/** The write routes of this port, by method. */
const WRITES_BY_METHOD: Record<string, { op: 'write' | 'patch' | 'rollback'; verb: string | null; needs: Permission[] }> = {
  PUT: { op: 'write', verb: null, needs: ['write'] },
  PATCH: { op: 'patch', verb: null, needs: ['write', 'read'] },
  POST: { op: 'rollback', verb: 'rollback', needs: ['write', 'read'] },
};

function clientIp(ctx: Context): string {
  return ctx.req.socket.remoteAddress ?? 'unknown';
}

function principalOf(ctx: Context): OidcPrincipal {
  const p = (ctx.state as OidcState).principal;
  if (!p) throw new UnauthorizedError('no_principal');
  return p;
}

/**
 * The OIDC port's app: only the contract's routes. Bearer JWTs (or exchanged
 * tokens) become principals whose grants come from matching roles. Failed
 * authentications are rate limited per client IP (valid traffic never spends
 * that budget), requests per tenant.
 */
export function buildOidcApp(deps: OidcAppDeps): Koa {
  const app = new Koa();
  app.proxy = false;
  app.silent = true;

  // Only failures spend the per-IP budget, and the check comes after
  // verification: a busy runner's valid tokens are never throttled by its
  // neighbours' bad ones. Over budget, a failure is answered 429, not 401.
  // A JWT whose (unverified) iss names an issuer with its own per_ip_failed_rps
  // spends that issuer's budget for the address, apart from the global one.
  // The refusal is the same either way: it tells nothing of the issuer.
  const failed = (ctx: Context, refusal: UnauthorizedError, jwt?: string): never => {
    const err = clockSkewRefusal(refusal, jwt);
    deps.metrics.jwtRejections.inc({ reason: err.reason.split(':')[0]! });
    const iss = claimedIssuer(jwt);
    const own = iss === undefined ? undefined : deps.registry.byIssuerUrl(iss)?.config;
    const rate = own?.rate_limit?.per_ip_failed_rps;
    const wait = rate === undefined ? deps.failedAuth.take(clientIp(ctx)) : deps.failedAuth.take(`${iss}\0${clientIp(ctx)}`, rate);
    if (wait > 0) {
      deps.metrics.rateLimited.inc({ port: 'oidc', limit: 'failed_auth' });
      deps.log.info({ reason: err.reason, client_ip: clientIp(ctx), ...(rate === undefined ? {} : { issuer: own!.name }) }, 'authentication refused (rate limited)');
      throw new RateLimitedError(retryAfter(wait));
    }
    throw err;
  };

  // A repeated JWT comes back from the cache as the same verified object: its
  // principal is kept with it, for the roles array (replaced on every role
  // change) and the X-Nexus-Role it was resolved under.
  const jwtPrincipals = new WeakMap<VerifiedToken, { roles: RoleConfig[]; only: string | undefined; principal: OidcPrincipal }>();
  /** A JWT principal no role matched, and the short reason why. */
  const unmatched = new WeakMap<OidcPrincipal, string>();
  /** A refusal of a principal no role matched carries the reason to the audit record. */
  const explained = (err: unknown, p: OidcPrincipal | undefined): unknown => {
    const why = p && unmatched.get(p);
    return why && err instanceof ForbiddenError && !err.reason ? new ForbiddenError(err.message, why) : err;
  };

  const fromJwt = async (ctx: Context, jwt: string, onlyRole?: string): Promise<{ principal: OidcPrincipal; verified: VerifiedToken }> => {
    const verified = await deps.jwts.verify(jwt);
    const { issuer, claims } = verified;
    const only = onlyRole ?? (ctx.get('X-Nexus-Role') ? parseName(ctx.get('X-Nexus-Role')) : undefined);
    const configured = deps.roles();
    const known = jwtPrincipals.get(verified);
    if (known && known.roles === configured && known.only === only) return { principal: known.principal, verified };
    const { roles, grants } = resolveRoles(configured, issuer.config.name, claims as Record<string, unknown>, only);
    // Why no role matched, for the audit record (the response stays "no role matches").
    const why = roles.length === 0 ? noRoleReason(explainRoles(configured, issuer.config, claims as Record<string, unknown>, only), issuer.config.name) : undefined;
    if (only && roles.length === 0) throw new ForbiddenError(`role ${only} does not match this token`, why);
    // The audit trail gets an HMAC of the jti (or of the whole JWT when it has none), never the token.
    const tokenId = deps.audit.tokenId(typeof claims.jti === 'string' ? `jti:${claims.jti}` : jwt);
    const tenant = tenantOf(issuer.config, configured, roles, claims as Record<string, unknown>);
    const principal: OidcPrincipal = { kind: 'oidc', issuer: issuer.config.name, issuerUrl: issuer.config.issuer, subject: String(claims.sub ?? ''), roles, grants, via: 'jwt', tokenId, ...(tenant ? { tenant } : {}), tenants: tenantClaimValues(issuer.config.tenant_claims, claims as Record<string, unknown>) };
    jwtPrincipals.set(verified, { roles: configured, only, principal });
    if (why) unmatched.set(principal, why);
    return { principal, verified };
  };

  const current: CurrentConfig = {
    issuer: (name) => deps.registry.byName(name)?.config,
    roles: () => deps.roles(),
    keySet: (name) => deps.registry.byName(name)?.currentThumbprints() ?? null,
  };
  const exchanged = new TokenPrincipals(deps.store, current, (raw) => deps.audit.tokenId(raw));

  const narrow = (ctx: Context, p: OidcPrincipal): OidcPrincipal => {
    const raw = ctx.get('X-Nexus-Role');
    if (!raw || p.via === 'jwt') return p;
    const only = parseName(raw);
    if (!p.roles.includes(only)) throw new ForbiddenError(`role ${only} is not carried by this token`);
    return { ...p, roles: [only], grants: p.grants.filter((g) => g.role === only) };
  };

  // Per tenant (limits.ts, tenantOf), not per client address: CI runners share
  // addresses. At the issuer's own per_tenant_rps when it has one.
  const limitTenant = (p: OidcPrincipal) => {
    const rate = deps.registry.byName(p.issuer)?.config.rate_limit?.per_tenant_rps;
    const wait = deps.perTenant.take(`${p.issuerUrl}\0${p.tenant ?? `sub=${p.subject}`}`, rate);
    if (wait > 0) {
      deps.metrics.rateLimited.inc({ port: 'oidc', limit: 'tenant' });
      throw new RateLimitedError(retryAfter(wait));
    }
  };

  /** Authentication middleware; `credential` takes the token from the request (or throws UnauthorizedError). */
  const authenticateWith =
    (credential: (ctx: Context) => string) =>
    async (ctx: Context, next: Next): Promise<void> => {
      await deps.fresh?.();
      let principal: OidcPrincipal;
      let token: string | undefined;
      try {
        token = credential(ctx);
        principal = token.startsWith(TOKEN_PREFIX) ? await exchanged.principal(token) : (await fromJwt(ctx, token)).principal;
      } catch (err) {
        if (err instanceof UnauthorizedError) failed(ctx, err, token);
        throw err;
      }
      const unnarrowed = principal;
      principal = narrow(ctx, principal);
      limitTenant(principal);
      (ctx.state as OidcState).principal = principal;
      try {
        await next();
      } catch (err) {
        throw explained(err, unnarrowed);
      }
    };

  const bearer = (ctx: Context): string => {
    const header = ctx.get('Authorization');
    // The scheme is case-insensitive (RFC 9110, 11.1); the credential is not.
    const m = /^Bearer +([^\s]+)$/i.exec(header);
    if (!m) throw new UnauthorizedError(header ? 'authorization_not_bearer' : 'no_credentials');
    return m[1]!;
  };

  /**
   * The one token exchange: POST /v1/auth/token and the Vault login both come
   * here (same verification, limits and audit), the login restricted to its role.
   * Without a usable jwt this is a failed authentication (401), not a bad request.
   */
  const exchange = async (ctx: Context, jwt: string | undefined, onlyRole?: string): Promise<Exchanged> => {
    await deps.fresh?.();
    let exchanged: Awaited<ReturnType<typeof fromJwt>>;
    try {
      if (jwt === undefined) throw new UnauthorizedError('exchange_without_jwt');
      exchanged = await fromJwt(ctx, jwt, onlyRole);
    } catch (err) {
      if (err instanceof UnauthorizedError) failed(ctx, err, jwt);
      throw err;
    }
    const { principal, verified } = exchanged;
    (ctx.state as OidcState).principal = principal;
    if (principal.roles.length === 0) throw explained(new ForbiddenError('no role matches this token'), principal);
    limitTenant(principal);
    const roles = deps.roles().filter((r) => principal.roles.includes(r.name));
    const issued = await issueToken(deps.store, verified, roles);
    return { ...issued, principal, accessor: deps.audit.tokenId(issued.token) };
  };

  // Only token exchange, the CI webhooks and granted writes carry a body; anything else with one is refused unread.
  const noBody = async (ctx: Context, next: Next) => {
    const allowed =
      (ctx.method === 'POST' && (ctx.path === '/v1/auth/token' || ctx.path === CI_EVENT_ROUTES.github || ctx.path === CI_EVENT_ROUTES.gitlab)) ||
      (deps.vaultCompat && ctx.path === VAULT_LOGIN && (ctx.method === 'POST' || ctx.method === 'PUT')) ||
      (ctx.method in WRITES_BY_METHOD && ctx.path.startsWith('/v1/secrets/')) ||
      (ctx.method === 'PUT' && (ctx.path === '/v1/leases/renew' || ctx.path === '/v1/leases/revoke')) ||
      (deps.vaultCompat && (ctx.method === 'PUT' || ctx.method === 'POST') && (ctx.path === VAULT_LEASE_RENEW || ctx.path === VAULT_LEASE_REVOKE));
    const hasBody = Number(ctx.get('Content-Length') || 0) > 0 || Boolean(ctx.get('Transfer-Encoding'));
    if (!allowed && hasBody) {
      // node-vault's tokenRevokeSelf sends `{}`: read that much and no more, and let only an empty object through.
      if (!(ctx.path === REVOKE_SELF && (ctx.method === 'POST' || ctx.method === 'PUT') && (await emptyJsonBody(ctx)))) {
        ctx.set('Connection', 'close');
        throw new TooLargeError('this route takes no request body');
      }
    }
    await next();
  };

  const open = healthRoutes(deps.readiness, { detail: false });
  const doc = oidcPortDocument(deps.vaultCompat, deps.dbcreds !== undefined);
  open.get('/openapi.json', (ctx) => {
    ctx.body = doc;
  });

  /** A read on either route shape (native or Vault): recorded, then decided on the grants before any lookup. */
  const readSecret = (ctx: Context, prefix: string): Promise<SecretVersion> => {
    const { path, verb } = secretTarget(ctx, prefix);
    const version = queryOne(ctx, 'version');
    noteAudit(ctx, { action: 'read', path, ...(version && /^\d+$/.test(version) ? { version: Number(version) } : {}) });
    if (verb !== null) throw new BadRequestError('verb', 'only plain reads exist on this port');
    if (!grantAllows(principalOf(ctx).grants, 'read', path)) throw new ForbiddenError(`permission denied: read on ${path}`);
    return deps.secrets.get(path, version);
  };

  const token = new Router();
  token.post('/v1/auth/token', async (ctx) => {
    noteAudit(ctx, { action: 'token.exchange' });
    const body = TokenRequest.safeParse(await readBody(ctx, JsonObject, TOKEN_BODY_LIMIT));
    const { token: t, expires_in } = await exchange(ctx, body.success ? body.data.jwt : undefined);
    ctx.body = { token: t, expires_in };
  });

  // Revoke-self, for both route families: the token as Bearer, or as
  // X-Vault-Token (vault token revoke -self sends PUT). A job gives back what
  // it no longer needs; the revocation reaches every replica before the 204.
  const selfToken = (ctx: Context): string => (deps.vaultCompat && ctx.get('X-Vault-Token') ? vaultToken(ctx) : bearer(ctx));
  const self = new Router();
  self.register(REVOKE_SELF, ['POST', 'PUT'], [authenticateWith(selfToken), async (ctx: Context) => {
    noteAudit(ctx, { action: 'token.revoke-self' });
    const p = principalOf(ctx);
    if (p.roles.length === 0) throw new ForbiddenError('no role matches this token');
    if (p.via !== 'exchanged_token') throw new BadRequestError('token', 'only an exchanged token can be revoked: a JWT ends at its exp');
    // Gone between authentication and here (a concurrent revocation): revoked all the same.
    await changeAudited(ctx, async () => {
      // The token first, so it mints nothing more; then every lease minted with it, before the 204.
      await revokeToken(deps.store, selfToken(ctx));
      if (deps.dbcreds && p.tokenHash) await deps.dbcreds.leases.revokeForTokens([p.tokenHash], 'token revoked by its holder');
    });
    ctx.status = 204;
  }]);

  const api = new Router();
  api.use(authenticateWith(bearer));
  api.get('/v1/whoami', (ctx) => {
    noteAudit(ctx, { action: 'whoami' });
    const p = principalOf(ctx);
    // A token of a trusted issuer that no role binds holds no grant here; it
    // learns nothing either (not even the issuer's name), as on every other route.
    if (p.roles.length === 0) throw new ForbiddenError('no role matches this token');
    ctx.body = { issuer: p.issuerUrl, issuer_name: p.issuer, subject: p.subject, roles: p.roles, grants: p.grants.map(({ path, permissions }) => ({ path, permissions })), via: p.via };
  });
  api.get('/v1/secrets', async (ctx) => {
    const p = principalOf(ctx);
    const include = queryOne(ctx, 'include');
    if (include === undefined) {
      ctx.body = await deps.secrets.list(listRequest(ctx, grantsAuthorizer.mayEver(p, 'list'), grantsAuthorizer.globs(p, 'list')));
      return;
    }
    if (include !== 'data') throw new BadRequestError('include', 'include takes only data');
    ctx.body = await subtreeWithData(ctx, deps.secrets, grantsAuthorizer.mayEver(p, 'read'), grantsAuthorizer.globs(p, 'read'));
  });
  api.get('/v1/secrets/{*rest}', async (ctx) => {
    ctx.body = await readSecret(ctx, SECRETS_PREFIX);
  });
  // Writes exist here only as far as a role grants them explicitly (write; a patch or rollback also read).
  api.register('/v1/secrets/{*rest}', Object.keys(WRITES_BY_METHOD), async (ctx) => {
    const { path, verb } = secretTarget(ctx);
    const write = WRITES_BY_METHOD[ctx.method]!;
    noteAudit(ctx, { action: write.op, path });
    if (verb !== write.verb) throw new BadRequestError('verb', `only ${Object.entries(WRITES_BY_METHOD).map(([m, w]) => `${m}${w.verb ? ` :${w.verb}` : ''}`).join(', ')} write on this port`);
    const grants = principalOf(ctx).grants;
    requirePermissions((action, target) => grantAllows(grants, action, target), write.needs, path);
    await writeVersion(ctx, deps.secrets, write.op, path, grantAllows(grants, 'read', path), WRITE_BODY_LIMIT);
  });

  // Database credentials: read on db/creds/{role} through the roles' grants;
  // leases only of an exchanged token (a lease ends with its token, and a JWT
  // cannot be revoked), renewed or revoked only with that same token.
  const leaseCaller = (ctx: Context): LeaseCaller => {
    const p = principalOf(ctx);
    if (p.roles.length === 0) throw new ForbiddenError('no role matches this token');
    if (p.via !== 'exchanged_token' || !p.tokenHash) throw new BadRequestError('token', 'database credentials need an exchanged token (POST /v1/auth/token): a lease ends with its token');
    return { principal: p, port: 'oidc', claims: p.claims, tokenHash: p.tokenHash, tokenExpiresAt: p.expiresAt ?? null, requestId: (ctx.state as RequestState).requestId, tokenId: p.tokenId, mayRead: (path) => grantAllows(p.grants, 'read', path) };
  };
  // One implementation for the native routes and their Vault-compatible twins (which only reshape).
  const db = deps.dbcreds;
  const leaseOps = db && {
    /** Before any body is read: a token with no role, or a JWT, gets no further. */
    guard: (ctx: Context) => void leaseCaller(ctx),
    creds: async (ctx: Context, rawRole: string | undefined) => {
      const role = parseName(rawRole);
      const path = credsPath(role);
      noteAudit(ctx, { action: 'db.creds', path });
      if (!grantAllows(principalOf(ctx).grants, 'read', path)) throw new ForbiddenError(`permission denied: read on ${path}`);
      const who = leaseCaller(ctx);
      const ttl = ttlQuery(ctx);
      return changeAudited(ctx, () => db.leases.issue(role, who, ttl));
    },
    renew: (ctx: Context, leaseId: string, incrementS: number | undefined) => {
      noteAudit(ctx, { action: 'lease.renew', path: leaseId });
      return changeAudited(ctx, () => db.leases.renew(leaseId, incrementS, leaseCaller(ctx)));
    },
    revoke: (ctx: Context, leaseId: string) => {
      noteAudit(ctx, { action: 'lease.revoke', path: leaseId });
      return changeAudited(ctx, () => db.leases.revoke(leaseId, leaseCaller(ctx)));
    },
  };
  if (leaseOps) {
    api.get('/v1/db/creds/:role', async (ctx) => {
      ctx.body = await leaseOps.creds(ctx, ctx.params.role);
    });
    api.put('/v1/leases/renew', async (ctx) => {
      leaseOps.guard(ctx);
      const input = await readBody(ctx, LeaseRenewInput, 4096);
      ctx.body = await leaseOps.renew(ctx, input.lease_id, input.increment);
    });
    api.put('/v1/leases/revoke', async (ctx) => {
      leaseOps.guard(ctx);
      const input = await readBody(ctx, LeaseRevokeInput, 4096);
      await leaseOps.revoke(ctx, input.lease_id);
      ctx.status = 204;
    });
  }

  // The hot routes first: each router a request passes matches its path against
  // every route it holds (no two routers here share a path, so the order
  // changes no answer). The client bundles are public, like health (tools.ts).
  const routers = [api, token, self, open, toolRoutes(loadTools(deps.log)), ciEventRoutes(deps.ciEvents, failed, (hashes) => deps.dbcreds?.leases.revokeForTokens(hashes, 'CI run ended') ?? Promise.resolve())];
  app.use(measureRequests(deps.metrics, 'oidc'));
  if (deps.vaultCompat) {
    // Outside the error handler: it reshapes the rendered error, so status,
    // Retry-After and the redacted 401 message stay exactly the native ones.
    app.use(vaultErrors);
    routers.splice(3, 0, vaultRoutes({ readiness: deps.readiness, exchange, readSecret, authenticate: authenticateWith(vaultToken), principal: principalOf, secrets: deps.secrets, bodyLimit: TOKEN_BODY_LIMIT, leases: leaseOps }));
  }
  app.use(errorHandling(deps.log, { port: 'oidc', redact401: true }));
  if (deps.sealGate) app.use(deps.sealGate);
  app.use(auditRequests(deps.audit, 'oidc', deps.signals));
  app.use(noBody);
  for (const r of routers) {
    app.use(r.routes());
    app.use(r.allowedMethods());
  }
  return app;
}

/** The most an ignored empty JSON body may take (`{}` with a little whitespace). */
const EMPTY_BODY_LIMIT = 16;

/** True when the request's body is an empty JSON object (or blank); reads at most EMPTY_BODY_LIMIT bytes, false past them. */
async function emptyJsonBody(ctx: Context): Promise<boolean> {
  if (Number(ctx.get('Content-Length') || 0) > EMPTY_BODY_LIMIT) return false;
  let raw: Buffer;
  try {
    raw = await readRaw(ctx, EMPTY_BODY_LIMIT);
  } catch {
    return false;
  }
  const text = raw.toString('utf8').trim();
  if (text === '') return true;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0;
  } catch {
    return false;
  }
}
