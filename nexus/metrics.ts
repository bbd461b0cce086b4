import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Prometheus metrics, in a registry of their own (not prom-client's global
 * one), so several servers can live in one process (tests) without clashes.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<'port' | 'method' | 'route' | 'status'>;
  readonly latency: Histogram<'port' | 'method' | 'route'>;
  readonly jwtRejections: Counter<'reason'>;
  readonly jwksFetches: Counter<'issuer' | 'result'>;
  readonly rateLimited: Counter<'port' | 'limit'>;
  readonly storage: Histogram<'op'>;
  readonly auditBreaks: Counter;

  constructor(secretsCount: () => Promise<number>) {
    const registers = [this.registry];
    this.requests = new Counter({ name: 'nexus_http_requests_total', help: 'HTTP requests by port, method, route template and status', labelNames: ['port', 'method', 'route', 'status'], registers });
    this.latency = new Histogram({
      name: 'nexus_http_request_duration_seconds',
      help: 'HTTP request latency',
      labelNames: ['port', 'method', 'route'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.jwtRejections = new Counter({ name: 'nexus_jwt_rejections_total', help: 'JWTs refused on the OIDC port, by reason', labelNames: ['reason'], registers });
    this.jwksFetches = new Counter({ name: 'nexus_jwks_fetches_total', help: 'JWKS fetches by issuer and result', labelNames: ['issuer', 'result'], registers });
    this.rateLimited = new Counter({ name: 'nexus_rate_limited_total', help: 'Requests refused by a rate limit', labelNames: ['port', 'limit'], registers });
    this.storage = new Histogram({
      name: 'nexus_storage_operation_duration_seconds',
      help: 'Secrets service operation latency (storage and crypto)',
      labelNames: ['op'],
      buckets: [0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.1],
      registers,
    });
    this.auditBreaks = new Counter({ name: 'nexus_audit_chain_breaks_total', help: 'Audit trails found at start not matching their anchor (a new segment records each)', registers });
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
