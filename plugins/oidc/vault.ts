import Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import type { OidcPrincipal } from '../../nexus/auth/principal.js';
import { BadRequestError, UnauthorizedError } from '../../nexus/errors.js';
import { noteAudit } from '../../nexus/http/audit.js';
import { readBody } from '../../nexus/http/body.js';
import { JsonObject } from '../../nexus/schema.js';
import type { ErrorBody, RequestState } from '../../nexus/http/errors.js';
import type { Readiness } from '../../nexus/http/health.js';
import { parseName } from '../../nexus/policy/schema.js';
import type { SecretsService } from '../../nexus/secrets/service.js';
import type { SecretVersion } from '../../nexus/secrets/types.js';
import { TOKEN_PREFIX } from './exchange.js';
import { TokenRequest } from './schema.js';
import { vaultKvRoutes } from './vault-kv.js';
import type { VaultDbCredsResponse, VaultHealth, VaultLeaseRenewed, VaultLoginResponse, VaultSecretResponse, VaultTokenLookup } from './vault-schema.js';
import type { DbCreds } from '../../nexus/dbcreds/schema.js';
import { LeaseRenewInput, LeaseRevokeInput } from '../../nexus/dbcreds/schema.js';

/**
 * The Vault-compatible CI subset of the OIDC port: just enough of Vault's
 * JWT auth method, KV v2 reads, token lookup and health for the clients CI
 * already runs (hashicorp/vault-action, GitLab's `secrets: vault:`,
 * node-vault) to work unchanged. Every route goes through the OIDC port's
 * own exchange, authentication, grants, limits and audit: only the shapes
 * of requests and responses are Vault's.
 */

export const VAULT_LOGIN = '/v1/auth/jwt/login';
export const VAULT_KV_PREFIX = '/v1/secret/data/';
const LOOKUP_SELF = '/v1/auth/token/lookup-self';
/** Served by the OIDC app itself (native Bearer or X-Vault-Token), with Vault's error shape under /v1/auth/. */
export const REVOKE_SELF = '/v1/auth/token/revoke-self';
const HEALTH = '/v1/sys/health';

/** What an exchange hands back (the native route shows only token and expires_in). */
export interface Exchanged {
  token: string;
  expires_in: number;
  principal: OidcPrincipal;
  /** A handle that names the token without being it (the audit trail's token id). */
  accessor: string;
}

export interface VaultDeps {
  readiness: Readiness;
  exchange(ctx: Context, jwt: string | undefined, onlyRole: string): Promise<Exchanged>;
  readSecret(ctx: Context, prefix: string): Promise<SecretVersion>;
  /** The port's authentication, taking the token from X-Vault-Token. */
  authenticate: Middleware;
  principal(ctx: Context): OidcPrincipal;
  /** Listings and metadata, decided here on the principal's grants. */
  secrets: Pick<SecretsService, 'list' | 'metadata'>;
  bodyLimit: number;
  /** Database credentials and leases (absent: those routes are not served). */
  leases?: {
    guard(ctx: Context): void;
    creds(ctx: Context, role: string | undefined): Promise<DbCreds>;
    renew(ctx: Context, leaseId: string, incrementS: number | undefined): Promise<{ lease_id: string; lease_duration: number; renewable: boolean }>;
    revoke(ctx: Context, leaseId: string): Promise<void>;
  };
}

export const VAULT_DB_CREDS = '/v1/database/creds/';
export const VAULT_LEASE_RENEW = '/v1/sys/leases/renew';
export const VAULT_LEASE_REVOKE = '/v1/sys/leases/revoke';

/** Vault's own prefixes: every answer under them, unknown paths included, is Vault-shaped. */
const VAULT_PREFIXES = ['/v1/secret/', '/v1/sys/', '/v1/auth/', '/v1/database/'];
/** The native exchange lives under /v1/auth/ too, and keeps the native shape. */
const NATIVE_EXCHANGE = '/v1/auth/token';

function isVaultPath(path: string): boolean {
  return path !== NATIVE_EXCHANGE && VAULT_PREFIXES.some((p) => path.startsWith(p));
}

/** Vault clients read errors from `{"errors":[...]}`; same status and message as the native error. */
export async function vaultErrors(ctx: Context, next: Next): Promise<void> {
  await next();
  const body = ctx.body as Partial<ErrorBody> | undefined;
  if (ctx.status >= 400 && body?.error && isVaultPath(ctx.path)) ctx.body = { errors: [body.error.message] };
}

/** Vault tokens are what the login returned: an exchanged token, never a raw JWT. */
export function vaultToken(ctx: Context): string {
  const t = ctx.get('X-Vault-Token');
  if (!t) throw new UnauthorizedError('no_credentials');
  if (!t.startsWith(TOKEN_PREFIX)) throw new UnauthorizedError('vault_token_not_exchanged');
  return t;
}

/** Vault's response envelope (see vault-schema.ts), without its `data` and `auth`. */
function envelope(ctx: Context) {
  return { request_id: (ctx.state as RequestState).requestId, lease_id: '', renewable: false, lease_duration: 0, wrap_info: null, warnings: null } as const;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function vaultRoutes(deps: VaultDeps): Router {
  const router = new Router();

  // POST (Vault's clients) or PUT (`vault write auth/jwt/login`): Vault treats both as a write.
  router.register(VAULT_LOGIN, ['POST', 'PUT'], async (ctx) => {
    noteAudit(ctx, { action: 'token.exchange' });
    // Vault ignores the content type: `curl --data '{...}'` sends application/x-www-form-urlencoded.
    const body = await readBody(ctx, JsonObject, deps.bodyLimit, { anyContentType: true });
    if (body.role === undefined) throw new BadRequestError('role', 'missing role: this login takes {"role","jwt"}');
    const role = parseName(body.role);
    // Without a usable jwt, a failed authentication (401), as on /v1/auth/token.
    const jwt = TokenRequest.safeParse({ jwt: body.jwt });
    const { token, expires_in, principal, accessor } = await deps.exchange(ctx, jwt.success ? jwt.data.jwt : undefined, role);
    ctx.body = {
      ...envelope(ctx),
      data: null,
      auth: {
        client_token: token,
        accessor,
        policies: principal.roles,
        token_policies: principal.roles,
        metadata: { role, issuer: principal.issuer, subject: principal.subject },
        lease_duration: expires_in,
        renewable: false,
        entity_id: '',
        token_type: 'service',
        orphan: true,
      },
    } satisfies VaultLoginResponse;
  });

  router.get(HEALTH, (ctx) => {
    const ready = Object.values(deps.readiness.checks()).every(Boolean);
    // Vault answers 503 when sealed: not ready is the nearest thing here.
    ctx.status = ready ? 200 : 503;
    ctx.body = {
      initialized: true,
      sealed: !ready,
      standby: false,
      performance_standby: false,
      replication_performance_mode: 'disabled',
      replication_dr_mode: 'disabled',
      server_time_utc: Math.floor(Date.now() / 1000),
      version: VAULT_API_VERSION,
      cluster_name: 'nexus',
      cluster_id: '',
    } satisfies VaultHealth;
  });

  router.get(LOOKUP_SELF, deps.authenticate, (ctx) => {
    noteAudit(ctx, { action: 'whoami' });
    const p = deps.principal(ctx);
    const expires = p.expiresAt ?? Date.now();
    // Vault also echoes the token as `id`; we never put a token in a response.
    ctx.body = {
      ...envelope(ctx),
      auth: null,
      data: {
        accessor: p.tokenId ?? '',
        display_name: `jwt-${p.subject}`,
        entity_id: '',
        expire_time: iso(expires),
        explicit_max_ttl: 0,
        meta: { issuer: p.issuer, subject: p.subject },
        num_uses: 0,
        orphan: true,
        path: 'auth/jwt/login',
        policies: p.roles,
        renewable: false,
        ttl: Math.max(0, Math.floor((expires - Date.now()) / 1000)),
        type: 'service',
      },
    } satisfies VaultTokenLookup;
  });

  router.get(`${VAULT_KV_PREFIX}{*rest}`, deps.authenticate, async (ctx) => {
    const s = await deps.readSecret(ctx, VAULT_KV_PREFIX);
    ctx.body = {
      ...envelope(ctx),
      auth: null,
      mount_type: 'kv',
      data: { data: s.data, metadata: { created_time: s.created_at, custom_metadata: null, deletion_time: '', destroyed: false, version: s.version } },
    } satisfies VaultSecretResponse;
  });
  vaultKvRoutes(router, { secrets: deps.secrets, authenticate: deps.authenticate, principal: deps.principal, envelope });
  if (deps.leases) {
    // Vault's database secrets engine, as hashicorp/vault-action reads it: database/creds/ROLE username | password.
    const leases = deps.leases;
    router.get(`${VAULT_DB_CREDS}:role`, deps.authenticate, async (ctx) => {
      const c = await leases.creds(ctx, ctx.params.role);
      ctx.body = {
        ...envelope(ctx),
        lease_id: c.lease_id,
        renewable: c.renewable,
        lease_duration: c.lease_duration,
        auth: null,
        data: { username: c.username, password: c.password },
      } satisfies VaultDbCredsResponse;
    });
    // Vault takes any Content-Type (the vault CLI and curl --data send form-encoded JSON).
    // PUT (vault lease renew) or POST (node-vault's write): Vault treats both as a write.
    router.register(VAULT_LEASE_RENEW, ['PUT', 'POST'], [deps.authenticate, async (ctx: Context) => {
      leases.guard(ctx);
      const input = await readBody(ctx, LeaseRenewInput, 4096, { anyContentType: true });
      const r = await leases.renew(ctx, input.lease_id, input.increment);
      ctx.body = { ...envelope(ctx), ...r, auth: null, data: null } satisfies VaultLeaseRenewed;
    }]);
    router.register(VAULT_LEASE_REVOKE, ['PUT', 'POST'], [deps.authenticate, async (ctx: Context) => {
      leases.guard(ctx);
      const input = await readBody(ctx, LeaseRevokeInput, 4096, { anyContentType: true });
      await leases.revoke(ctx, input.lease_id);
      ctx.status = 204;
    }]);
  }
  return router;
}

/**
 * The Vault API level these routes follow (KV v2 and JWT auth as in Vault
 * 1.15), tagged so nobody mistakes Nexus for Vault itself.
 */
export const VAULT_API_VERSION = '1.15.0+nexus';
