import type Koa from 'koa';
import type { AuthPlugin } from './auth/plugin.js';
import { TrustBundle } from './auth/trust-bundle.js';
import type { Config } from './config/index.js';
import { openCore, type Core } from './core.js';
import { buildMtlsApp } from './http/mtls-app.js';
import { recordCertExpiry } from './listeners/cert-expiry.js';
import { startMtlsListener, type Listener } from './listeners/mtls.js';
import { checkPortsFree } from './listeners/port-check.js';
import type { Logger } from './log.js';
import { LogBudget } from './log-budget.js';
import { ensureTlsFiles } from './pki/dev-pki.js';
import type { SvidFiles } from './spiffe/server-svid.js';
import { PolicyEngine } from './policy/engine.js';
import { PolicyService } from './policy/service.js';
import { lockDataDir } from './storage/lock.js';
import { checkConfigFiles } from './config/files.js';
import { auditForwarding } from './audit/forwarding.js';

export interface RunningServer {
  core: Core;
  mtls: Listener;
  /** The mTLS port's Koa app (its routers are what /openapi.json documents). */
  mtlsApp: Koa;
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
  let core: Core | null = null;
  let svid: SvidFiles | null = null;
  try {
    core = await openCore(config, log);
    // gRPC is loaded only by a server that uses the Workload API.
    if (config.spiffeSocket) svid = await (await import('./spiffe/server-svid.js')).startSvidFiles(config, log);
    const tlsFiles = svid?.files ?? (await ensureTlsFiles(config, log));
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
    const plugins = opts.plugins ?? [];
    let listening = false;
    const { storage, audit } = core;
    // Made (its CA read) before anything listens; started once the server is up.
    const forwarder = auditForwarding(config, audit, core.metrics, log);
    const readiness = {
      checks: async () => ({
        ...Object.assign({}, ...plugins.map((p) => p.readiness?.() ?? {})),
        db: await storage.ping(),
        root_key: true, // verified before start-up got this far
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
        await p.start({ config, log: log.child({ plugin: p.name }), storage: core.storage, secrets: core.secrets, rootKey: core.rootKey, keyring: core.keyring, policy: engine, tls: tlsFiles, audit: core.audit, metrics: core.metrics, signals: core.signals });
        started.push(p);
        for (const [port, a] of Object.entries(p.addresses?.() ?? {})) {
          log.info({ port, addr: hostPort(a) }, 'listening');
        }
      }
    } catch (err) {
      await stopPlugins(1000);
      throw err;
    }
    const trust = new TrustBundle();
    const refusals = new LogBudget(log, 'client certificate refused');
    const app = buildMtlsApp({
      log,
      trustDomain: config.trustDomain,
      trust,
      secrets: core.secrets,
      engine,
      policies,
      readiness,
      audit: core.audit,
      metrics: core.metrics,
      signals: core.signals,
      refusals,
      extraRoutes: (deps) => plugins.flatMap((p) => (p.adminRoutes ? [p.adminRoutes(deps)] : [])),
      extraOpenApi: Object.assign({}, ...plugins.map((p) => p.adminOpenApi?.() ?? {})),
    });
    let mtls: Listener;
    try {
      mtls = await startMtlsListener({
        files: tlsFiles,
        addr: config.mtlsAddr,
        handler: app.callback(),
        log,
        reloadIntervalMs: opts.tlsReloadIntervalMs,
        trust,
        refusals,
        onLoad: recordCertExpiry(core.metrics, 'mtls', { bundle: true }),
        limits: { minVersion: config.tlsMinVersion, handshakeTimeoutMs: config.handshakeTimeoutMs, maxConnections: config.mtlsMaxConnections, maxConnectionsPerIp: config.mtlsMaxConnectionsPerIp },
      });
    } catch (err) {
      await stopPlugins(1000);
      throw err;
    }
    forwarder?.start();
    listening = true;
    const a = mtls.address();
    log.info({ port: 'mtls', addr: hostPort(a), trust_domain: config.trustDomain }, 'listening');
    const opened = core;
    let stopping: Promise<void> | null = null;
    return {
      core: opened,
      mtls,
      mtlsApp: app,
      stop: (graceMs = 9000) =>
        (stopping ??= (async () => {
          listening = false;
          await Promise.all([mtls.close(graceMs), stopPlugins(graceMs)]);
          unsubscribe();
          svid?.stop();
          await forwarder?.stop();
          await opened.close();
          lock.release();
          log.info('stopped');
        })()),
    };
  } catch (err) {
    svid?.stop();
    await core?.close();
    lock.release();
    throw err;
  }
}
