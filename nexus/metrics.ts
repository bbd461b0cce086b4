import { Counter, Gauge, Registry } from 'prom-client';

type RequestLabels = { port: string; method: string; route: string };
type Row = { metricName?: string; labels: Record<string, string | number>; value: number };
/** What a prom-client registry asks a metric for when it is scraped. */
interface Series {
  name: string;
  help: string;
  get(): { name: string; help: string; type: 'counter' | 'histogram'; aggregator: 'sum'; values: Row[] };
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
const STORAGE_BUCKETS = [0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.1];

interface Timing<L> {
  labels: L;
  /** Per bucket (not cumulative), the last one past the largest bound. */
  buckets: Float64Array;
  sum: number;
  count: number;
}

/**
 * A histogram kept as plain numbers, one map lookup per observation; its
 * Prometheus rows (the names and labels prom-client would give) are built
 * only when /metrics is scraped.
 */
export class LeanHistogram<L extends Record<string, string>> {
  private readonly timings = new Map<string, Timing<L>>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: number[],
  ) {}

  /** `key` identifies `labels` (the caller builds it once, cheaper than hashing the object). */
  observe(key: string, labels: L, seconds: number): void {
    let t = this.timings.get(key);
    if (!t) this.timings.set(key, (t = { labels, buckets: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 }));
    let i = 0;
    while (i < this.bounds.length && seconds > this.bounds[i]!) i++;
    t.buckets[i]!++;
    t.sum += seconds;
    t.count++;
  }

  series(): Series {
    const { name, help } = this;
    return {
      name,
      help,
      get: () => {
        const values: Row[] = [];
        for (const t of this.timings.values()) {
          let acc = 0;
          this.bounds.forEach((le, i) => {
            acc += t.buckets[i]!;
            values.push({ metricName: `${name}_bucket`, labels: { le, ...t.labels }, value: acc });
          });
          values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf', ...t.labels }, value: t.count });
          values.push({ metricName: `${name}_sum`, labels: t.labels, value: t.sum });
          values.push({ metricName: `${name}_count`, labels: t.labels, value: t.count });
        }
        return { name, help, type: 'histogram', aggregator: 'sum', values };
      },
    };
  }
}

/** Request counts and latencies as plain numbers, one lookup each per request. */
export class RequestStats {
  private readonly counts = new Map<string, { labels: RequestLabels & { status: string }; n: number }>();
  private readonly latency = new LeanHistogram<RequestLabels>('nexus_http_request_duration_seconds', 'HTTP request latency', LATENCY_BUCKETS);

  record(port: string, method: string, route: string, status: number, seconds: number): void {
    const key = `${port} ${method} ${route}`;
    const ckey = `${key} ${status}`;
    const c = this.counts.get(ckey);
    if (c) c.n++;
    else this.counts.set(ckey, { labels: { port, method, route, status: String(status) }, n: 1 });
    this.latency.observe(key, { port, method, route }, seconds);
  }

  /** Collectors for a prom-client registry. */
  series(): Series[] {
    const requests = 'nexus_http_requests_total';
    const help = 'HTTP requests by port, method, route template and status';
    return [
      { name: requests, help, get: () => ({ name: requests, help, type: 'counter', aggregator: 'sum', values: [...this.counts.values()].map((c) => ({ labels: c.labels, value: c.n })) }) },
      this.latency.series(),
    ];
  }
}

/**
 * Prometheus metrics, in a registry of their own (not prom-client's global
 * one), so several servers can live in one process (tests) without clashes.
 */
export class Metrics {
  readonly registry = new Registry();
  /** Per-request series: plain counters, turned into Prometheus text at scrape time. */
  readonly http = new RequestStats();
  readonly jwtRejections: Counter<'reason'>;
  readonly jwksFetches: Counter<'issuer' | 'result'>;
  readonly jwksFetchErrors: Counter<'issuer'>;
  /** Each issuer's key set as it is now (set by the plugin that holds them; read at scrape time). */
  keySets: () => Array<{ issuer: string; ageS: number | null; keys: number }> = () => [];
  readonly rateLimited: Counter<'port' | 'limit'>;
  /** Secrets service operations, by `op` (a lean histogram: observed on every read). */
  readonly storage = new LeanHistogram<{ op: string }>('nexus_storage_operation_duration_seconds', 'Secrets service operation latency (storage and crypto)', STORAGE_BUCKETS);
  readonly auditBreaks: Counter;
  /** Database credential revocations by outcome: revoked, retry (a failed attempt), failed (gave up: alert). */
  readonly leaseRevocations: Counter<'outcome'>;
  /** Counts the leases not yet revoked (set by the lease service; none before it starts). */
  leasesActive: () => Promise<number> = () => Promise.resolve(0);
  readonly unsealFailures: Counter;
  /** Set by the seal. /metrics answers 503 while sealed (the contract's gate), so a scrape reads 0; an in-process reader sees 1. */
  sealed: () => boolean = () => false;
  readonly securitySignals: Counter<'signal' | 'port'>;
  /** Set by the listeners as they (re)load their files (nexus/listeners/cert-expiry.ts). */
  readonly certExpiry: Gauge<'listener'>;
  readonly auditForwardErrors: Counter<'reason'>;
  /** The server chain's head and the forwarder's backlog, read at scrape (set where the trail and forwarder start). */
  auditHead: () => { generation: number; count: number } | null = () => null;
  auditForwardLag: () => number = () => 0;

  constructor(secretsCount: () => Promise<number>) {
    const registers = [this.registry];
    for (const m of this.http.series()) this.registry.registerMetric(m as never);
    this.jwtRejections = new Counter({ name: 'nexus_jwt_rejections_total', help: 'JWTs refused on the OIDC port, by reason', labelNames: ['reason'], registers });
    this.jwksFetches = new Counter({ name: 'nexus_jwks_fetches_total', help: 'JWKS fetches by issuer and result', labelNames: ['issuer', 'result'], registers });
    this.jwksFetchErrors = new Counter({ name: 'nexus_oidc_jwks_fetch_errors_total', help: 'Failed loads of an issuer key set (IdP fetch or key-set file)', labelNames: ['issuer'], registers });
    const keySets = () => this.keySets();
    new Gauge({
      name: 'nexus_oidc_jwks_age_seconds',
      help: 'Seconds since the issuer key set serving now was fetched (or loaded, without an IdP to ask)',
      labelNames: ['issuer'],
      registers,
      collect() {
        this.reset();
        for (const k of keySets()) if (k.ageS !== null) this.set({ issuer: k.issuer }, k.ageS);
      },
    });
    new Gauge({
      name: 'nexus_oidc_jwks_keys',
      help: 'Keys in the issuer key set serving now',
      labelNames: ['issuer'],
      registers,
      collect() {
        this.reset();
        for (const k of keySets()) this.set({ issuer: k.issuer }, k.keys);
      },
    });
    this.rateLimited = new Counter({ name: 'nexus_rate_limited_total', help: 'Requests refused by a rate limit', labelNames: ['port', 'limit'], registers });
    this.registry.registerMetric(this.storage.series() as never);
    this.auditBreaks = new Counter({ name: 'nexus_audit_chain_breaks_total', help: 'Audit trails found at start not matching their anchor (a new segment records each)', registers });
    this.leaseRevocations = new Counter({ name: 'nexus_lease_revocations_total', help: 'Database credential lease revocations, by outcome (failed: given up after retries)', labelNames: ['outcome'], registers });
    const leases = () => this.leasesActive();
    new Gauge({
      name: 'nexus_leases_active',
      help: 'Database credential leases not yet revoked (all replicas: read from the database)',
      registers,
      async collect() {
        this.set(await leases());
      },
    });
    this.unsealFailures = new Counter({ name: 'nexus_unseal_failures_total', help: 'Unseal shares refused (malformed, another split, another attempt) and quorums that did not open the seal', registers });
    const sealed = () => this.sealed();
    new Gauge({
      name: 'nexus_sealed',
      help: '1 while the root key is not in memory',
      registers,
      collect() {
        this.set(sealed() ? 1 : 0);
      },
    });
    this.securitySignals = new Counter({ name: 'nexus_security_signals_total', help: 'Access signals raised (new_path, denied_burst, read_spike, token_replay, config_change, audit_integrity), by port', labelNames: ['signal', 'port'], registers });
    this.certExpiry = new Gauge({ name: 'nexus_tls_cert_expiry_timestamp_seconds', help: "notAfter of each port's certificate and of the trust bundle's earliest CA (listener=trust_bundle)", labelNames: ['listener'], registers });
    this.auditForwardErrors = new Counter({ name: 'nexus_audit_forward_errors_total', help: 'Audit forwarding failures: connect, tls (receiver certificate refused) or io (connection lost)', labelNames: ['reason'], registers });
    // Zero from the start, so a rate() or an alert sees the first failure.
    for (const reason of ['connect', 'tls', 'io']) this.auditForwardErrors.inc({ reason }, 0);
    const gauge = (name: string, help: string, value: () => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(value());
        },
      });
    gauge('nexus_audit_forward_lag_records', 'Audit records written but not yet sent to the syslog receiver', () => this.auditForwardLag());
    gauge('nexus_audit_chain_head_seq', "The server audit chain's last record (sequence number in its generation)", () => this.auditHead()?.count ?? 0);
    gauge('nexus_audit_chain_head_generation', "The server audit chain's generation (a new one begins at each break)", () => this.auditHead()?.generation ?? 0);
    new Gauge({
      name: 'nexus_secrets',
      help: 'Secrets stored (paths)',
      registers,
      async collect() {
        this.set(await secretsCount());
      },
    });
  }
}
