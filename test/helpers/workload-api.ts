import * as grpc from '@grpc/grpc-js';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { issueCert, type Issuer } from '../../nexus/pki/x509.js';
import { WORKLOAD_METADATA, workloadService } from '../../nexus/spiffe/workload-api.js';
import { tempDir } from './env.js';

/** What the test agent serves: one SVID, PEM. */
export interface ServedSvid {
  spiffeId: string;
  certPem: string;
  keyPem: string;
  bundlePem: string;
}

export interface TestWorkloadApi {
  /** The socket path; `endpoint` is the same as unix:// URI. */
  socket: string;
  endpoint: string;
  /** Serve `svid` from now on and push it to every open stream (a rotation, or a registration). */
  rotate(svid: ServedSvid): void;
  /** Streams currently open. */
  streams(): number;
  /** Requests refused for lacking the workload.spiffe.io metadata. */
  refused(): number;
  stop(): Promise<void>;
}

const pemDers = (pem: string): Buffer[] =>
  (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((b) => Buffer.from(new X509Certificate(b).raw));

function message(svid: ServedSvid) {
  return {
    svids: [
      {
        spiffe_id: svid.spiffeId,
        x509_svid: Buffer.concat(pemDers(svid.certPem)),
        x509_svid_key: createPrivateKey(svid.keyPem).export({ format: 'der', type: 'pkcs8' }),
        bundle: Buffer.concat(pemDers(svid.bundlePem)),
      },
    ],
  };
}

/** An SVID from `ca`, served with `ca` as its bundle. */
export async function svidFrom(ca: Issuer, spiffeId: string, extra: { dns?: string[]; ips?: string[]; notAfter?: Date } = {}): Promise<ServedSvid> {
  const leaf = await issueCert(ca, { uris: [spiffeId], ...extra });
  return { spiffeId, certPem: leaf.certPem, keyPem: leaf.keyPem, bundlePem: ca.cert.toString('pem') };
}

/**
 * A SPIFFE Workload API server of our own (SPIRE cannot be installed here):
 * grpc-js on a Unix socket, FetchX509SVID as a stream that gets one message
 * at once and one more on every rotate(). Like SPIRE's agent, it refuses a
 * call without the workload.spiffe.io metadata, and with `initial` null (no
 * registration entry matches the caller) it answers PERMISSION_DENIED "no
 * identity issued" until rotate() gives it an SVID.
 */
export async function startWorkloadApi(initial: ServedSvid | null): Promise<TestWorkloadApi> {
  const socket = path.join(tempDir('spiffe'), 'agent.sock');
  let current = initial;
  let refused = 0;
  const open = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  const server = new grpc.Server();
  server.addService(workloadService().service, {
    FetchX509SVID: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      if (call.metadata.get(WORKLOAD_METADATA.key)[0] !== WORKLOAD_METADATA.value) {
        refused += 1;
        call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'security header missing from request' });
        return;
      }
      if (!current) {
        call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: 'no identity issued' });
        return;
      }
      open.add(call);
      call.on('cancelled', () => open.delete(call));
      call.on('close', () => open.delete(call));
      call.write(message(current));
    },
  });
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  return {
    socket,
    endpoint: `unix://${socket}`,
    rotate: (svid) => {
      current = svid;
      for (const call of open) call.write(message(svid));
    },
    streams: () => open.size,
    refused: () => refused,
    stop: async () => {
      server.forceShutdown();
      fs.rmSync(socket, { force: true });
    },
  };
}
