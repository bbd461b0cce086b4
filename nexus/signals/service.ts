import type { AuditEntry, AuditTrail } from '../audit/trail.js';
import type { Config } from '../config/index.js';
import type { Logger } from '../log.js';
import { LogBudget } from '../log-budget.js';
import type { Metrics } from '../metrics.js';
import type { Storage } from '../storage/storage.js';
import { AccessSignals, type SignalSink } from './engine.js';
import { BaselineStore } from './store.js';
import type { Signal, SignalName, SignalPort } from './types.js';

/** Paths remembered per principal (memory: at most maxPrincipals x this). */
export const PATHS_PER_PRINCIPAL = 128;
/** Signals kept in signal_events, and at most this many listed by one GET /v1/signals. */
const KEEP_EVENTS_MS = 90 * 86_400_000;
const LIST_LIMIT = 1000;
const FLUSH_MS = 1000;

const DECISION: Record<SignalName, AuditEntry['decision']> = {
  new_path: 'allow',
  read_spike: 'allow',
  token_replay: 'allow',
  config_change: 'allow',
  denied_burst: 'deny',
  audit_integrity: 'error',
};

export type SignalConfig = Pick<Config, 'signals' | 'signalLearnS' | 'signalDeniedBurst' | 'signalDeniedWindowS' | 'signalMaxPrincipals'>;

export interface SignalDeps {
  storage: Pick<Storage, 'tx' | 'signals'>;
  trail: AuditTrail;
  metrics: Metrics;
  log: Logger;
}

/**
 * The access signals of one process: the engine, and where each signal goes
 * (a `kind: signal` record in the audit chain, the counter, one warn line at
 * most so many a second, and signal_events for GET /v1/signals).
 */
export class SignalService implements SignalSink {
  readonly engine: AccessSignals;
  /** What the audit layer feeds with requests; null when NEXUS_SIGNALS=off. */
  readonly requests: AccessSignals | null;
  private readonly lines: LogBudget;

  private constructor(
    private readonly deps: SignalDeps,
    private readonly store: BaselineStore,
    config: SignalConfig,
  ) {
    this.engine = new AccessSignals(
      { learnMs: config.signalLearnS * 1000, deniedBurst: config.signalDeniedBurst, deniedWindowMs: config.signalDeniedWindowS * 1000, maxPrincipals: config.signalMaxPrincipals, maxPathsPerPrincipal: PATHS_PER_PRINCIPAL },
      this,
    );
    this.requests = config.signals ? this.engine : null;
    this.lines = new LogBudget(deps.log, 'security signal', 20, 1000);
    store.attach(this.engine);
    deps.trail.onUnwritable((err) => this.engine.auditIntegrity(`the audit trail cannot be written: ${err.message}`));
  }

  /** Opens the service with the most recently active baselines already loaded. */
  static async open(deps: SignalDeps, config: SignalConfig): Promise<SignalService> {
    const store = new BaselineStore(deps.storage, deps.log, FLUSH_MS, PATHS_PER_PRINCIPAL);
    const service = new SignalService(deps, store, config);
    const loaded = await store.preload(config.signalMaxPrincipals);
    const pruned = await store.prune(new Date(Date.now() - KEEP_EVENTS_MS).toISOString());
    deps.log.debug({ baselines: loaded, pruned_signals: pruned }, 'access signals ready');
    return service;
  }

  raise(s: Signal): void {
    this.deps.metrics.securitySignals.inc({ signal: s.signal, port: s.port });
    this.lines.warn({ signal: s.signal, port: s.port, principal: s.principal, address: s.address, path: s.path, why: s.why }, `security signal: ${s.signal}`);
    this.store.record(s);
    // Not awaited: a signal is output, and an unwritable trail is itself a signal.
    void this.deps.trail.record({
      port: s.port,
      principal: { key: s.principal },
      action: `signal.${s.signal}`,
      path: s.path,
      decision: DECISION[s.signal],
      kind: 'signal',
      signal: s.signal,
      address: s.address || undefined,
      why: s.why,
    });
  }

  remember(principal: string, firstSeen: number, peak: number, path?: string): void {
    this.store.remember(principal, firstSeen, peak, path);
  }

  load(principal: string): void {
    this.store.load(principal);
  }

  /** Signals at or after `sinceMs`, oldest first (every replica's, from the database). */
  async list(sinceMs: number): Promise<Signal[]> {
    const rows = await this.store.list(new Date(sinceMs).toISOString(), LIST_LIMIT);
    return rows.map((r) => ({ signal: r.signal as SignalName, port: r.port as SignalPort, principal: r.principal, address: r.address, ...(r.path !== null ? { path: r.path } : {}), at: r.at, why: r.why }));
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
