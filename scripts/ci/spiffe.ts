// nexus-ci's SPIFFE side: the job's X509-SVID and its trust domain's bundle
// from the Workload API (SPIFFE_ENDPOINT_SOCKET, --spiffe-socket), turned into
// client.ts's TLS setup. gRPC is reached only through the dynamic import below,
// and only when a socket is used: the committed bundle keeps it in
// workload-api.mjs beside nexus-ci.mjs (scripts/ci/build.ts), so the JWT path
// neither loads nor needs it.
import { parseSpiffeId } from '../../nexus/auth/spiffe-id.js';
import { authorizeServer, expectedServerId } from '../../nexus/spiffe/server-id.js';
import type { TlsSetup } from './client.js';

/** No SVID from the Workload API (unreachable, gone, nothing registered, or its client missing): exit 1. */
export class SpiffeError extends Error {}

type WorkloadApi = typeof import('../../nexus/spiffe/workload-api.js');

async function workloadApi(socket: string): Promise<WorkloadApi> {
  try {
    return await import('../../nexus/spiffe/workload-api.js');
  } catch (err) {
    // nexus-ci.mjs copied on its own: enough for JWTs, not for a socket.
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && /workload-api/.test((err as Error).message)) {
      throw new SpiffeError(`cannot use the SPIFFE Workload API at ${socket}: workload-api.mjs is not beside nexus-ci.mjs (copy it and workload.proto from scripts/ci/dist too)`);
    }
    throw err;
  }
}

/**
 * Trust from the Workload API: its bundle is the CA, and the server at `url`
 * is authorized by SPIFFE ID (`serverIdSetting`, i.e. NEXUS_SERVER_SPIFFE_ID,
 * by default spiffe://<the SVID's trust domain>/nexus), never by host name.
 * With `presentSvid` (the mTLS port) the SVID is the client certificate too.
 */
export async function spiffeTls(socket: string, url: string, serverIdSetting: string | undefined, presentSvid: boolean): Promise<TlsSetup> {
  const { fetchX509Svid, WorkloadApiError } = await workloadApi(socket);
  let svid: Awaited<ReturnType<WorkloadApi['fetchX509Svid']>>;
  try {
    svid = await fetchX509Svid(socket);
  } catch (err) {
    if (err instanceof WorkloadApiError) throw new SpiffeError(err.message);
    throw err;
  }
  const id = parseSpiffeId(svid.spiffeId);
  if ('invalid' in id) throw new SpiffeError(`the SPIFFE Workload API at ${socket} gave an SVID whose ID is not a SPIFFE ID (${id.invalid})`);
  return {
    ca: svid.bundlePem,
    ...(presentSvid ? { svid: { cert: svid.certPem, key: svid.keyPem } } : {}),
    authorizeServer: authorizeServer(expectedServerId(id.trustDomain, serverIdSetting), new URL(url).origin),
  };
}
