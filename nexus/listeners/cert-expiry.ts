import { X509Certificate } from 'node:crypto';
import type { Metrics } from '../metrics.js';

/** What a listener has just put into service. */
export interface LoadedTls {
  /** The server certificate, leaf first (a chain may follow). */
  cert: Buffer;
  /** The trust bundle, one PEM per CA. */
  ca: string[];
}

/** notAfter in seconds since the epoch: what Prometheus compares with `time()`. */
export function notAfterSeconds(pem: string | Buffer): number {
  return Math.floor(Date.parse(new X509Certificate(pem).validTo) / 1000);
}

/**
 * Sets `nexus_tls_cert_expiry_timestamp_seconds{listener}` from the files a
 * listener loaded, at start and at every reload, so the gauge describes the
 * certificate in service rather than one on disk that failed to load. With
 * `bundle`, also `{listener="trust_bundle"}`: the earliest CA, as the first
 * one to expire is the first whose clients stop being trusted.
 */
export function recordCertExpiry(metrics: Metrics, listener: string, opts: { bundle: boolean }): (tls: LoadedTls) => void {
  return (tls) => {
    metrics.certExpiry.set({ listener }, notAfterSeconds(tls.cert));
    if (opts.bundle) metrics.certExpiry.set({ listener: 'trust_bundle' }, Math.min(...tls.ca.map(notAfterSeconds)));
  };
}
