import type { AdminRouteDeps, AuthPlugin, CoreServices, SealedListen } from '../../nexus/auth/plugin.js';
import { recordCertExpiry, type LoadedTls } from '../../nexus/listeners/cert-expiry.js';
import { startMtlsListener, type Listener } from '../../nexus/listeners/mtls.js';
import { OidcAdmin, oidcAdminRoutes } from './admin.js';
import { DEFAULT_TIMINGS, IssuerRegistry, type KeyTimings } from './issuers.js';
import { VerifiedJwtCache } from './jwt-cache.js';
import { TokenBuckets } from './limits.js';
import { buildOidcApp } from './listener.js';
import { CiEvents } from './ci-events.js';
import { OidcStore } from './store.js';
import { oidcAdminPaths } from './openapi.js';
import type Koa from 'koa';
import fs from 'node:fs';
import tls from 'node:tls';
import type { Config, TlsFiles } from '../../nexus/config/index.js';
import { ConfigError } from '../../nexus/errors.js';
import type { Logger } from '../../nexus/log.js';
import { roleLint } from './presets.js';
import type { Metrics } from '../../nexus/metrics.js';
import { probeIssuer } from './probe.js';
import { RoleTester } from './role-test.js';
import { applySeed, parseSeed } from './seed.js';
import type { RoleConfig } from './types.js';
import type { DbCreds } from '../../nexus/dbcreds/index.js';
import { WebhookSecrets } from './webhook-secrets.js';
import { PURGE_BATCH, TokenPurge } from './token-purge.js';
import type { ConfigVersionsRepo } from '../../nexus/storage/storage.js';

/** NEXUS_OIDC_TLS_CERT/KEY readable and a matching pair, checked before anything listens. */
function checkOidcTls(config: Config): void {
  if (!config.oidcTls) return;
  const { cert, key } = config.oidcTls;
  const read = (name: string, file: string) => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new ConfigError(name, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const pair = { cert: read('NEXUS_OIDC_TLS_CERT', cert), key: read('NEXUS_OIDC_TLS_KEY', key) };
  try {
    tls.createSecureContext(pair);
  } catch (err) {
    // OpenSSL's message names no key material, only what is wrong with it.
    throw new ConfigError('NEXUS_OIDC_TLS_CERT', `${cert} and ${config.oidcTls.key} are not a usable certificate and key: ${(err as Error).message}`);
  }
}

export interface OidcPluginOptions {
  timings?: KeyTimings;
  /** Rows per purge batch (tests make it small to see the batches). */
  purgeBatch?: number;
  onPurgeBatch?: (deleted: number) => void;
}

/**
 * The OIDC resource server: its own hardened HTTPS port where CI jobs present
 * their platform's JWT, and issuer/role admin routes on the mTLS port.
 */
export class OidcPlugin implements AuthPlugin {
  readonly name = 'oidc';
  private store: OidcStore | null = null;
  private registry: IssuerRegistry | null = null;
  private jwts: VerifiedJwtCache | null = null;
  private listener: Listener | null = null;
  private rolesCache: RoleConfig[] = [];
  private rolesReads = 0;
  /** The `oidc` configuration counter when rolesCache was read (freshRoles). */
  private rolesVersion: number | undefined;
  private unsubscribe: (() => void) | null = null;
  private purge: TokenPurge | null = null;
  private log: Logger | null = null;
  private dbcreds: DbCreds | null = null;
  private sealed: (() => boolean) | undefined;
  private webhookSecrets: WebhookSecrets | null = null;
  /** The OIDC port's Koa app (what its /openapi.json documents). */
  app: Koa | null = null;

  constructor(private readonly opts: OidcPluginOptions = {}) {}

  /** Reload issuers and roles after an admin change here or on another replica (or at start). */
  private async refresh(): Promise<void> {
    const [roles, issuers] = await Promise.all([this.readRoles(), this.store!.issuers()]);
    if (roles) this.rolesCache = roles;
    for (const k of this.registry!.sync(issuers)) void k.preload();
  }

  /** The roles as stored now; of overlapping reads, only the one started last is kept (null: superseded). */
  private async readRoles(): Promise<RoleConfig[] | null> {
    const n = ++this.rolesReads;
    const roles = await this.store!.roles();
    return n === this.rolesReads ? roles : null;
  }

  /**
   * With replicas: a role narrowed on another one bites at once, so each
   * request checks the roles are current. The check is the configuration
   * counters (every role change bumps `oidc` in its own transaction): the
   * roles themselves are read and parsed again only when it moved. The
   * counter is read before the roles, so a change between the two reads
   * leaves a counter older than the roles held, and the next request reads again.
   */
  private async freshRoles(versions: ConfigVersionsRepo): Promise<void> {
    const version = (await versions.all()).get('oidc');
    if (version !== undefined && version === this.rolesVersion) return;
    const roles = await this.readRoles();
    if (roles) {
      this.rolesCache = roles;
      this.rolesVersion = version;
    }
  }

  async start(core: CoreServices): Promise<void> {
    const addr = core.config.oidcAddr;
    if (!addr) throw new Error('the OIDC plugin needs NEXUS_OIDC_ADDR');
    const seed = parseSeed(core.config);
    checkOidcTls(core.config);
    this.store = new OidcStore(core.storage);
    this.log = core.log;
    this.dbcreds = core.dbcreds;
    this.sealed = core.sealed;
    this.webhookSecrets = new WebhookSecrets(core.storage, core.keyring);
    if (core.config.configFile) await applySeed(core.storage, this.store, core.audit, seed, core.config.configFile, core.log, this.webhookSecrets, core.signals);
    // The lint of role writes, for the roles the file writes (the API answers them in the response).
    for (const role of seed.roles) {
      const issuer = seed.issuers.find((i) => i.name === role.issuer);
      for (const warning of issuer ? roleLint(role, issuer) : []) core.log.warn({ file: core.config.configFile, role: role.name }, warning);
    }
    this.registry = new IssuerRegistry(core.log, this.opts.timings ?? DEFAULT_TIMINGS, (issuer, ok) => {
      core.metrics.jwksFetches.inc({ issuer, result: ok ? 'ok' : 'error' });
      if (!ok) core.metrics.jwksFetchErrors.inc({ issuer });
    });
    const keySets = this.registry;
    core.metrics.keySets = () => keySets.all().map((k) => ({ issuer: k.config.name, ageS: k.ageS(), keys: k.state().keys }));
    this.jwts = new VerifiedJwtCache(this.registry);
    const log = core.log;
    const jwts = this.jwts;
    this.unsubscribe = core.storage.subscribe(async (topic) => {
      if (topic === 'tokens' || topic === 'all') this.store?.forgetTokens();
      if (topic !== 'oidc' && topic !== 'all') return;
      // Another replica changed an issuer: its verified JWTs are not reused meanwhile.
      jwts.clear();
      try {
        await this.refresh();
      } catch (err) {
        log.warn({ err }, 'could not reload OIDC issuers and roles');
        throw err; // so the version poll tries again
      }
    });
    await this.refresh();
    const registry = this.registry;
    const app = (this.app = buildOidcApp({
      log: core.log,
      secrets: core.secrets,
      store: this.store,
      registry,
      jwts: this.jwts,
      roles: () => this.rolesCache,
      fresh: core.storage.shared ? () => this.freshRoles(core.storage.configVersions) : undefined,
      failedAuth: new TokenBuckets(core.config.oidcFailedAuthRps),
      perTenant: new TokenBuckets(core.config.oidcSubjectRps),
      readiness: { checks: () => this.readiness() },
      audit: core.audit,
      metrics: core.metrics,
      signals: core.signals,
      vaultCompat: core.config.oidcVaultCompat,
      dbcreds: core.dbcreds,
      ciEvents: new CiEvents(this.store, this.webhookSecrets),
      sealGate: core.sealGate,
    }));
    // Its own certificate when configured (CI runners on another network trust
    // a public CA, not our SPIFFE bundle); the bundle file is only watched, as
    // this port asks no client certificate.
    if (this.listener) {
      this.recordCerts(recordCertExpiry(core.metrics, 'oidc', { bundle: false }));
      this.handler = app.callback();
    } else await this.bind(core.config, core.log, core.tls, app.callback(), core.metrics);
    this.purge = new TokenPurge(this.store, { intervalMs: core.config.oidcTokenPurgeIntervalMs, batch: this.opts.purgeBatch ?? PURGE_BATCH, onBatch: this.opts.onPurgeBatch }, core.log);
    this.purge.start();
  }

  /** Sealed start: the port answers the core's sealed app until start() swaps this plugin's app in. */
  async listenSealed(ctx: SealedListen): Promise<void> {
    if (!ctx.config.oidcAddr) throw new Error('the OIDC plugin needs NEXUS_OIDC_ADDR');
    checkOidcTls(ctx.config);
    await this.bind(ctx.config, ctx.log, ctx.tls, ctx.handler);
  }

  private handler: SealedListen['handler'] = () => undefined;
  /** Bound while sealed (no metrics yet): what the listener loaded, for the gauge once there is one. */
  private loadedTls: LoadedTls | null = null;
  private onLoad: ((tls: LoadedTls) => void) | null = null;

  private recordCerts(record: (tls: LoadedTls) => void): void {
    this.onLoad = record;
    if (this.loadedTls) record(this.loadedTls);
  }

  // Its own certificate when configured (CI runners on another network trust
  // a public CA, not our SPIFFE bundle); the bundle file is only watched, as
  // this port asks no client certificate.
  private async bind(config: Config, log: Logger, tls: TlsFiles, handler: SealedListen['handler'], metrics?: Metrics): Promise<void> {
    this.handler = handler;
    if (metrics) this.onLoad = recordCertExpiry(metrics, 'oidc', { bundle: false });
    const files = config.oidcTls ? { ca: tls.ca, ...config.oidcTls } : tls;
    this.listener = await startMtlsListener({
      files,
      addr: config.oidcAddr!,
      handler: (req, res) => this.handler(req, res),
      log,
      requireClientCert: false,
      // Its own certificate only: the bundle it watches verifies no one here, the mTLS port reports it.
      onLoad: (tls) => {
        this.loadedTls = tls;
        this.onLoad?.(tls);
      },
      limits: {
        headersTimeoutMs: 5_000,
        requestTimeoutMs: 10_000,
        keepAliveTimeoutMs: 5_000,
        maxHeaderSize: 20 * 1024,
        handshakeTimeoutMs: config.handshakeTimeoutMs,
        minVersion: config.tlsMinVersion,
        maxConnections: config.oidcMaxConnections,
        maxConnectionsPerIp: config.oidcMaxConnectionsPerIp,
      },
    });
  }

  adminOpenApi() {
    return oidcAdminPaths();
  }

  checkConfig(config: Config): void {
    parseSeed(config);
    checkOidcTls(config);
  }

  adminRoutes(deps: AdminRouteDeps) {
    return oidcAdminRoutes(
      new OidcAdmin(
        this.storeOrThrow(),
        () => this.refresh(),
        this.log!,
        (cfg) => probeIssuer(cfg, (this.opts.timings ?? DEFAULT_TIMINGS).timeoutMs),
        this.webhookSecrets!,
        () => this.dbcreds?.sweeper.sweepAfterChange() ?? Promise.resolve(),
      ),
      this.storeOrThrow(),
      new RoleTester(this.registry!, this.storeOrThrow()),
      deps,
    );
  }

  private storeOrThrow(): OidcStore {
    if (!this.store) throw new Error('OIDC plugin not started');
    return this.store;
  }

  readiness(): Record<string, boolean> {
    const issuers = this.registry?.all() ?? [];
    return {
      oidc_listener: this.listener !== null,
      oidc_issuer_keys: issuers.length === 0 || issuers.some((i) => i.loaded()),
      // Sealed at runtime, every route here answers 503: a load balancer must not send CI traffic.
      root_key: !(this.sealed?.() ?? false),
    };
  }

  /** Each issuer's key set, by name: shown on the mTLS port's /readyz, never a reason to be unready. */
  readinessDetails(): Record<string, unknown> {
    return { oidc_issuers: Object.fromEntries((this.registry?.all() ?? []).map((k) => [k.config.name, k.state()])) };
  }

  addresses(): Record<string, { host: string; port: number }> {
    return this.listener ? { oidc: this.listener.address() } : {};
  }

  async stop(graceMs: number): Promise<void> {
    await this.purge?.stop();
    this.unsubscribe?.();
    for (const k of this.registry?.all() ?? []) k.close();
    await this.listener?.close(graceMs);
    this.listener = null;
  }
}
