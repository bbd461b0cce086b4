import type Koa from 'koa';
import type { AuthPlugin } from './auth/plugin.js';
import { TrustBundle } from './auth/trust-bundle.js';
import type { Config, TlsFiles } from './config/index.js';
import { openCore, type Core } from './core.js';
import { buildMtlsApp } from './http/mtls-app.js';
import { recordCertExpiry, type LoadedTls } from './listeners/cert-expiry.js';
import { startMtlsListener, type Listener } from './listeners/mtls.js';
import { checkPortsFree } from './listeners/port-check.js';
import type { Logger } from './log.js';
import { LogBudget } from './log-budget.js';
import { ensureTlsFiles } from './pki/dev-pki.js';
import type { SvidFiles } from './spiffe/server-svid.js';
import { PolicyEngine } from './policy/engine.js';
import { PolicyService } from './policy/service.js';
import { lockDataDir, type DataDirLock } from './storage/lock.js';
import type { RootKey } from './crypto/root-key.js';
import { SealedError } from './errors.js';
import { buildSealedApp } from './http/sealed-app.js';
import { sealedGate } from './http/sealed-gate.js';
import { SealAtStart } from './seal/at-start.js';
import type { SealController } from './seal/seal.js';
import { checkConfigFiles } from './config/files.js';
import { auditForwarding } from './audit/forwarding.js';
import { startDbCreds, type DbCreds } from './dbcreds/index.js';

export interface RunningServer {
  core: Core;
  mtls: Listener;
  /** The mTLS port's Koa app (its routers are what /openapi.json documents). */
  mtlsApp: Koa;
  /** The seal: sealed or not, unseal progress. */
  seal: SealController;
  /** Stop accepting, finish in-flight requests (up to graceMs), close the db. */
  stop(graceMs?: number): Promise<void>;
}

export interface ServerOptions {
  /** How often TLS files are checked for changes. */
  tlsReloadIntervalMs?: number;
  /** Auth plugins to start beside the mTLS port (composed by the entry point). */
  plugins?: AuthPlugin[];
}

function hostPort(a: { host: string; port: number }): string {
  return `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

/** The composition root: storage, PKI, policy, listeners. */
export async function startServer(config: Config, log: Logger, opts: ServerOptions = {}): Promise<RunningServer> {
  // Before the lock (which creates the data dir): a bad config writes nothing.
  checkConfigFiles(config);
  await checkPortsFree(config);
  const lock = lockDataDir(config.dataDir, 'nexus-server');
  try {
    const seal = await SealAtStart.open(config, log);
    return seal.sealed ? await startSealed(config, log, opts, lock, seal) : await startUnsealed(config, log, opts, lock, seal, null);
  } catch (err) {
    lock.release();
    throw err;
  }
}

type Handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void;

/** What a sealed start already holds when the first unseal finishes it. */
interface Bound {
  svid: SvidFiles | null;
  tlsFiles: TlsFiles;
  mtls: Listener;
  trust: TrustBundle;
  swap(handler: Handler): void;
  /** The certificate gauge, fed from now on and with what the listener loaded at start. */
  recordCerts(onLoad: (tls: LoadedTls) => void): void;
}

function listenerLimits(config: Config) {
  return { minVersion: config.tlsMinVersion, handshakeTimeoutMs: config.handshakeTimeoutMs, maxConnections: config.mtlsMaxConnections, maxConnectionsPerIp: config.mtlsMaxConnectionsPerIp };
}

/**
 * Sealed (shamir): both ports listen with the sealed app and nothing is
 * opened beyond reading the seal; the first quorum of shares finishes
 * start-up and swaps the full apps in.
 */
async function startSealed(config: Config, log: Logger, opts: ServerOptions, lock: DataDirLock, seal: SealAtStart): Promise<RunningServer> {
  const plugins = opts.plugins ?? [];
  const trust = new TrustBundle();
  const sealedMtls = buildSealedApp({ log, port: 'mtls', seal: seal.controller, spiffe: { trustDomain: config.trustDomain, trust } });
  let current: Handler = sealedMtls.callback();
  // No metrics before the first unseal: what the listener loads is kept for the gauge until then.
  const certs = { last: null as LoadedTls | null, record: null as ((tls: LoadedTls) => void) | null, load(tls: LoadedTls) { this.last = tls; this.record?.(tls); } };
  let svid: SvidFiles | null = null;
  let full: RunningServer | null = null;
  let mtls: Listener;
  let tlsFiles: TlsFiles;
  try {
    if (config.spiffeSocket) svid = await (await import('./spiffe/server-svid.js')).startSvidFiles(config, log);
    tlsFiles = svid?.files ?? (await ensureTlsFiles(config, log));
    for (const p of plugins) {
      await p.listenSealed?.({ config, log: log.child({ plugin: p.name }), tls: tlsFiles, handler: buildSealedApp({ log, port: 'oidc', seal: seal.controller }).callback() });
      for (const [port, a] of Object.entries(p.addresses?.() ?? {})) log.info({ port, addr: hostPort(a), sealed: true }, 'listening');
    }
    mtls = await startMtlsListener({ files: tlsFiles, addr: config.mtlsAddr, handler: (req, res) => current(req, res), log, reloadIntervalMs: opts.tlsReloadIntervalMs, trust, limits: listenerLimits(config), onLoad: (tls) => certs.load(tls) });
  } catch (err) {
    for (const p of plugins) await p.stop(1000);
    svid?.stop();
    throw err;
  }
  const bound: Bound = {
    svid,
    tlsFiles,
    mtls,
    trust,
    swap: (h) => (current = h),
    recordCerts: (record) => {
      certs.record = record;
      if (certs.last) record(certs.last);
    },
  };
  seal.finish = async (root) => {
    full = await startUnsealed(config, log, opts, lock, seal, bound, root);
  };
  log.warn({ port: 'mtls', addr: hostPort(mtls.address()), seal: config.seal }, 'listening, sealed: unseal with a quorum of shares (pilot operator unseal)');
  let stopping: Promise<void> | null = null;
  return {
    get core(): Core {
      if (!full) throw new SealedError();
      return full.core;
    },
    mtls,
    get mtlsApp() {
      return full?.mtlsApp ?? sealedMtls;
    },
    seal: seal.controller,
    stop: (graceMs = 9000) =>
      (stopping ??= (async () => {
        if (full) return full.stop(graceMs);
        await Promise.all([mtls.close(graceMs), ...plugins.map((p) => p.stop(graceMs))]);
        svid?.stop();
        lock.release();
        log.info('stopped');
      })()),
  };
}

/** Everything on a known root key: a file or pkcs11 start, or a sealed start's first unseal (`bound`). */
async function startUnsealed(config: Config, log: Logger, opts: ServerOptions, lock: DataDirLock, seal: SealAtStart, bound: Bound | null, unsealedKey?: RootKey): Promise<RunningServer> {
  let core: Core | null = null;
  let svid: SvidFiles | null = bound?.svid ?? null;
  let dbcreds: DbCreds | null = null;
  try {
    core = await openCore(config, log, unsealedKey ?? seal.rootKey ?? undefined);
    seal.hold(core);
    // gRPC is loaded only by a server that uses the Workload API.
    if (config.spiffeSocket && !bound) svid = await (await import('./spiffe/server-svid.js')).startSvidFiles(config, log);
    const tlsFiles = bound?.tlsFiles ?? svid?.files ?? (await ensureTlsFiles(config, log));
    const engine = new PolicyEngine(core.storage.policies, config.adminSpiffeId);
    // Heard before the first load, so no change between the two is missed.
    const unsubscribe = core.storage.subscribe(async (topic) => {
      if (topic !== 'policies' && topic !== 'all') return;
      try {
        await engine.load();
      } catch (err) {
        log.warn({ err }, 'could not reload policies');
        throw err; // so the version poll tries again
      }
    });
    await core.storage.changesReady();
    await engine.load();
    const policies = new PolicyService(core.storage, engine, log);
    // Before any listener: its first sweep revokes what expired while Nexus was down.
    dbcreds = await startDbCreds(core, { owner: config.replicaId, maxLeasesPerCaller: config.dbMaxLeasesPerCaller });
    const creds = dbcreds;
    const plugins = opts.plugins ?? [];
    let listening = false;
    const { storage, audit } = core;
    // Made (its CA read) before anything listens; started once the server is up.
    const forwarder = auditForwarding(config, audit, core.metrics, log);
    const readiness = {
      checks: async () => ({
        ...Object.assign({}, ...plugins.map((p) => p.readiness?.() ?? {})),
        db: await storage.ping(),
        // Verified before start-up got this far; false while sealed (the key is out of memory).
        root_key: !seal.sealed,
        audit: audit.writable(),
        listeners: listening,
      }),
      // A break found at start does not stop service (a new segment records it); it stays visible here.
      details: () => ({
        ...Object.assign({}, ...plugins.map((p) => p.readinessDetails?.() ?? {})),
        audit: audit.chainBreak ? { chain: 'broken', detail: audit.chainBreak.detail, generation: audit.chainBreak.generation } : { chain: 'intact' },
      }),
    };
    const started: AuthPlugin[] = [];
    const stopPlugins = async (graceMs: number) => {
      for (const p of [...started].reverse()) await p.stop(graceMs);
    };
    try {
      for (const p of plugins) {
        await p.start({ config, log: log.child({ plugin: p.name }), storage: core.storage, secrets: core.secrets, rootKey: core.rootKey, keyring: core.keyring, policy: engine, tls: tlsFiles, audit: core.audit, metrics: core.metrics, dbcreds: creds, sealGate: sealedGate(seal.controller), sealed: () => seal.controller.sealed, signals: core.signals });
        started.push(p);
        for (const [port, a] of Object.entries(p.addresses?.() ?? {})) {
          log.info({ port, addr: hostPort(a) }, 'listening');
        }
      }
    } catch (err) {
      await stopPlugins(1000);
      throw err;
    }
    const trust = bound?.trust ?? new TrustBundle();
    const refusals = new LogBudget(log, 'client certificate refused');
    const app = buildMtlsApp({
      log,
      trustDomain: config.trustDomain,
      trust,
      secrets: core.secrets,
      engine,
      policies,
      readiness,
      seal: seal.controller,
      audit: core.audit,
      metrics: core.metrics,
      signals: core.signals,
      refusals,
      dbcreds: creds,
      extraRoutes: (deps) => plugins.flatMap((p) => (p.adminRoutes ? [p.adminRoutes(deps)] : [])),
      extraOpenApi: Object.assign({}, ...plugins.map((p) => p.adminOpenApi?.() ?? {})),
    });
    let mtls: Listener;
    try {
      if (bound) {
        bound.recordCerts(recordCertExpiry(core.metrics, 'mtls', { bundle: true }));
        bound.swap(app.callback());
        mtls = bound.mtls;
      } else mtls = await startMtlsListener({
        files: tlsFiles,
        addr: config.mtlsAddr,
        handler: app.callback(),
        log,
        reloadIntervalMs: opts.tlsReloadIntervalMs,
        trust,
        refusals,
        onLoad: recordCertExpiry(core.metrics, 'mtls', { bundle: true }),
        limits: listenerLimits(config),
      });
    } catch (err) {
      await stopPlugins(1000);
      throw err;
    }
    forwarder?.start();
    listening = true;
    const a = mtls.address();
    log.info({ port: 'mtls', addr: hostPort(a), trust_domain: config.trustDomain, seal: config.seal }, bound ? 'unsealed: serving' : 'listening');
    const opened = core;
    let stopping: Promise<void> | null = null;
    return {
      core: opened,
      mtls,
      mtlsApp: app,
      seal: seal.controller,
      stop: (graceMs = 9000) =>
        (stopping ??= (async () => {
          listening = false;
          await Promise.all([mtls.close(graceMs), stopPlugins(graceMs)]);
          unsubscribe();
          svid?.stop();
          await forwarder?.stop();
          await creds.stop();
          await opened.close();
          lock.release();
          log.info('stopped');
        })()),
    };
  } catch (err) {
    // A failed first unseal leaves the sealed listeners (and the lock) to the sealed server.
    if (!bound) svid?.stop();
    await dbcreds?.stop();
    await core?.close();
    throw err;
  }
}
