import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { AuditTrail } from '../audit/trail.js';
import type { Config, TlsFiles } from '../config/index.js';
import type { Metrics } from '../metrics.js';
import type { RequestSignals } from '../signals/engine.js';
import type { Keyring } from '../crypto/keyring.js';
import type { RootKey } from '../crypto/root-key.js';
import type { Logger } from '../log.js';
import type { SecretsService } from '../secrets/service.js';
import type { Storage } from '../storage/storage.js';
import type { Authorizer, Principal } from './principal.js';
import type { DbCreds } from '../dbcreds/index.js';

/** What the core hands a plugin: services, never internals of other plugins. */
export interface CoreServices {
  config: Config;
  log: Logger;
  storage: Storage;
  secrets: SecretsService;
  rootKey: RootKey;
  /** Seals and opens write-only values inside a plugin's configuration (config_secrets). */
  keyring: Pick<Keyring, 'sealConfig' | 'openConfig'>;
  /** The mTLS port's ACL engine (SPIFFE policies), for admin checks. */
  policy: Authorizer;
  /** The server SVID files (and bundle), for a plugin that opens its own HTTPS listener. */
  tls: TlsFiles;
  /** The audit trail (and its token-id HMAC). */
  audit: AuditTrail;
  metrics: Metrics;
  /** Database credentials and their leases (the OIDC port serves db/creds and leases too). */
  dbcreds: DbCreds;
  /** The sealed gate (nexus/http/sealed-gate.ts): a plugin's port puts it right after its error handler. */
  sealGate?: Middleware;
  /** True while the root key is out of memory (a runtime seal): the port's readiness says so too. */
  sealed?: () => boolean;
  /** Access signals, for the plugin's listener to hand its auditRequests. */
  signals?: RequestSignals;
}

export interface SealedListen {
  config: Config;
  log: Logger;
  tls: TlsFiles;
  handler: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void;
}

/** For admin routers a plugin adds to the mTLS port. */
export interface AdminRouteDeps {
  authz: Authorizer;
  principal(ctx: Context): Principal;
}

/**
 * An auth plugin turns requests into Principals. It may open its own listener
 * (start/stop) and add admin routes to the mTLS port. Plugins are composed by
 * the entry point (scripts/nexus.ts), so the core never imports one.
 */
export interface AuthPlugin {
  readonly name: string;
  /** Validates the plugin's part of the config without starting (nexus --check-config). */
  checkConfig?(config: Config): void;
  start(core: CoreServices): Promise<void>;
  /**
   * Sealed start: bind the plugin's port now, answering with `handler` (the
   * core's sealed app) until start() swaps the plugin's own app in.
   */
  listenSealed?(ctx: SealedListen): Promise<void>;
  adminRoutes?(deps: AdminRouteDeps): Router;
  /** OpenAPI path items for the admin routes it adds to the mTLS port. */
  adminOpenApi?(): Record<string, Record<string, unknown>>;
  /** Readiness checks, merged into /readyz. */
  readiness?(): Record<string, boolean>;
  /** More for the mTLS port's /readyz to show, without failing readiness. */
  readinessDetails?(): Record<string, unknown>;
  /** Addresses the plugin bound, for the start-up log. */
  addresses?(): Record<string, { host: string; port: number }>;
  stop(graceMs: number): Promise<void>;
}
