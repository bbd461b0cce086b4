// A client of the SPIFFE Workload API (X509-SVID profile): gRPC over a Unix
// socket, as SPIRE's agent serves it. Used by Nexus (its server SVID), Pilot
// and nexus-ci (their client SVIDs).
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { socketTarget } from './endpoint.js';

/** One X509-SVID with its key and its trust domain's bundle, all PEM. */
export interface X509Svid {
  spiffeId: string;
  /** Leaf first, then any intermediates. */
  certPem: string;
  keyPem: string;
  /** The CA certificates of the SVID's trust domain. */
  bundlePem: string;
  hint: string;
  notAfter: Date;
}

/** The Workload API could not be reached or answered something unusable; the message says which. */
export class WorkloadApiError extends Error {}

/** The metadata every Workload API call must carry (the spec's guard against SSRF through proxies). */
export const WORKLOAD_METADATA = { key: 'workload.spiffe.io', value: 'true' } as const;

function targetOf(socket: string): string {
  const t = socketTarget(socket);
  if (typeof t !== 'string') throw new WorkloadApiError(`SPIFFE Workload API socket ${t.invalid}`);
  return t;
}

/** Where the .proto lies: beside this module (sources, tsc output) or beside a bundle. */
function protoFile(): string {
  for (const rel of ['./workload.proto', './spiffe/workload.proto']) {
    const file = fileURLToPath(new URL(rel, import.meta.url));
    if (fs.existsSync(file)) return file;
  }
  throw new WorkloadApiError('workload.proto is missing from the installation (rebuild: npm run build)');
}

let serviceCache: grpc.ServiceClientConstructor | null = null;

/** The SpiffeWorkloadAPI service definition (client constructor), loaded once. */
export function workloadService(): grpc.ServiceClientConstructor {
  if (!serviceCache) {
    const def = protoLoader.loadSync(protoFile(), { keepCase: true, longs: String, defaults: true });
    serviceCache = grpc.loadPackageDefinition(def).SpiffeWorkloadAPI as grpc.ServiceClientConstructor;
  }
  return serviceCache;
}

/** Splits concatenated DER certificates (each an ASN.1 SEQUENCE with a definite length). */
export function splitDer(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < buf.length) {
    if (buf[at] !== 0x30 || at + 2 > buf.length) throw new WorkloadApiError('certificate bytes are not DER');
    let len = buf[at + 1]!;
    let head = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4 || at + 2 + n > buf.length) throw new WorkloadApiError('certificate bytes are not DER');
      len = buf.readUIntBE(at + 2, n);
      head += n;
    }
    const end = at + head + len;
    if (end > buf.length) throw new WorkloadApiError('certificate bytes are truncated');
    out.push(buf.subarray(at, end));
    at = end;
  }
  return out;
}

function derToPem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').trimEnd()}\n-----END CERTIFICATE-----\n`;
}

interface RawSvid {
  spiffe_id: string;
  x509_svid: Buffer;
  x509_svid_key: Buffer;
  bundle: Buffer;
  hint?: string;
}

/** Checks one SVID message and turns it into PEM: the key must match the leaf, whose URI SAN must be the stated ID. */
export function parseSvid(raw: RawSvid): X509Svid {
  const ders = splitDer(Buffer.from(raw.x509_svid));
  if (ders.length === 0) throw new WorkloadApiError(`SVID ${raw.spiffe_id} has no certificate`);
  const certs = ders.map((d) => new X509Certificate(d));
  const leaf = certs[0]!;
  const key = createPrivateKey({ key: Buffer.from(raw.x509_svid_key), format: 'der', type: 'pkcs8' });
  if (!leaf.checkPrivateKey(key)) throw new WorkloadApiError(`SVID ${raw.spiffe_id}: the private key does not match the certificate`);
  const uris = (leaf.subjectAltName ?? '').split(', ').filter((n) => n.startsWith('URI:'));
  if (uris.length !== 1 || uris[0] !== `URI:${raw.spiffe_id}`) throw new WorkloadApiError(`SVID ${raw.spiffe_id}: the certificate does not carry exactly that SPIFFE ID`);
  const bundle = splitDer(Buffer.from(raw.bundle));
  if (bundle.length === 0) throw new WorkloadApiError(`SVID ${raw.spiffe_id} comes without a trust bundle`);
  for (const b of bundle) new X509Certificate(b);
  return {
    spiffeId: raw.spiffe_id,
    certPem: ders.map(derToPem).join(''),
    keyPem: key.export({ format: 'pem', type: 'pkcs8' }) as string,
    bundlePem: bundle.map(derToPem).join(''),
    hint: raw.hint ?? '',
    notAfter: new Date(leaf.validTo),
  };
}

function firstSvid(res: { svids?: RawSvid[] }): X509Svid {
  const svid = res.svids?.[0];
  if (!svid) throw new WorkloadApiError('the SPIFFE Workload API holds no X509-SVID for this workload (is it registered?)');
  return parseSvid(svid);
}

function describe(socket: string, err: grpc.ServiceError | Error): WorkloadApiError {
  const e = err as grpc.ServiceError;
  const what = e.code === grpc.status.UNAVAILABLE ? 'unavailable' : e.code === grpc.status.DEADLINE_EXCEEDED ? 'no answer in time' : (grpc.status[e.code] ?? 'failed').toLowerCase();
  return new WorkloadApiError(`cannot fetch an X509-SVID from the SPIFFE Workload API at ${socket}: ${what}${e.details ? ` (${e.details})` : ''}`);
}

function openStream(target: string): { client: grpc.Client; call: grpc.ClientReadableStream<{ svids?: RawSvid[] }> } {
  const Service = workloadService();
  const client = new Service(target, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set(WORKLOAD_METADATA.key, WORKLOAD_METADATA.value);
  const call = (client as unknown as { FetchX509SVID(req: object, md: grpc.Metadata): grpc.ClientReadableStream<{ svids?: RawSvid[] }> }).FetchX509SVID({}, md);
  return { client, call };
}

/** The workload's default X509-SVID, fetched once. */
export function fetchX509Svid(socket: string, opts: { timeoutMs?: number } = {}): Promise<X509Svid> {
  const target = targetOf(socket);
  return new Promise((resolve, reject) => {
    const { client, call } = openStream(target);
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      call.cancel();
      client.close();
      fn();
    };
    const timer = setTimeout(() => finish(() => reject(new WorkloadApiError(`cannot fetch an X509-SVID from the SPIFFE Workload API at ${socket}: no answer within ${opts.timeoutMs ?? 10_000} ms`))), opts.timeoutMs ?? 10_000);
    call.on('data', (res: { svids?: RawSvid[] }) => {
      finish(() => {
        try {
          resolve(firstSvid(res));
        } catch (err) {
          reject(err);
        }
      });
    });
    call.on('error', (err: grpc.ServiceError) => finish(() => reject(describe(socket, err))));
    call.on('end', () => finish(() => reject(new WorkloadApiError(`the SPIFFE Workload API at ${socket} closed the stream without an SVID`))));
  });
}

export interface SvidWatch {
  /** Resolves with the first SVID; rejects on the first failure before one came, or after the timeout. */
  first: Promise<X509Svid>;
  stop(): void;
}

/**
 * Follows the workload's default X509-SVID: `onUpdate` gets the first one and
 * every rotation. A broken stream (agent restart) is reopened with backoff;
 * `onError` hears each failure, and the last good SVID stays in use.
 */
export function watchX509Svid(socket: string, onUpdate: (svid: X509Svid) => void, onError: (err: WorkloadApiError) => void, opts: { timeoutMs?: number; maxBackoffMs?: number } = {}): SvidWatch {
  const target = targetOf(socket);
  let stopped = false;
  let current: { client: grpc.Client; call: grpc.ClientReadableStream<{ svids?: RawSvid[] }> } | null = null;
  let retry: NodeJS.Timeout | null = null;
  let backoff = 500;
  let resolveFirst!: (s: X509Svid) => void;
  let rejectFirst!: (e: Error) => void;
  let gotFirst = false;
  const first = new Promise<X509Svid>((res, rej) => {
    resolveFirst = res;
    rejectFirst = rej;
  });
  first.catch(() => undefined); // the caller may only ever look at onError
  const firstTimer = setTimeout(() => {
    if (!gotFirst) rejectFirst(new WorkloadApiError(`cannot fetch an X509-SVID from the SPIFFE Workload API at ${socket}: no SVID within ${opts.timeoutMs ?? 10_000} ms`));
  }, opts.timeoutMs ?? 10_000);

  const connect = () => {
    if (stopped) return;
    const s = openStream(target);
    current = s;
    const reopen = (err: WorkloadApiError) => {
      if (stopped || current !== s) return;
      s.call.cancel();
      s.client.close();
      current = null;
      if (!gotFirst) rejectFirst(err);
      onError(err);
      retry = setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, opts.maxBackoffMs ?? 30_000);
    };
    s.call.on('data', (res: { svids?: RawSvid[] }) => {
      let svid: X509Svid;
      try {
        svid = firstSvid(res);
        onUpdate(svid);
      } catch (err) {
        // An unusable SVID (or one onUpdate refuses) is reported; the previous one stays in use.
        const e = err instanceof WorkloadApiError ? err : new WorkloadApiError((err as Error).message);
        if (!gotFirst) rejectFirst(e);
        onError(e);
        return;
      }
      backoff = 500;
      if (!gotFirst) {
        gotFirst = true;
        clearTimeout(firstTimer);
        resolveFirst(svid);
      }
    });
    s.call.on('error', (err: grpc.ServiceError) => reopen(describe(socket, err)));
    s.call.on('end', () => reopen(new WorkloadApiError(`the SPIFFE Workload API at ${socket} closed the stream`)));
  };
  connect();
  return {
    first,
    stop: () => {
      stopped = true;
      clearTimeout(firstTimer);
      if (retry) clearTimeout(retry);
      if (current) {
        current.call.cancel();
        current.client.close();
        current = null;
      }
    },
  };
}
