import fs from 'node:fs';
import path from 'node:path';
import { parseSpiffeId } from '../auth/spiffe-id.js';
import type { Config, TlsFiles } from '../config/index.js';
import { StartupError } from '../errors.js';
import type { Logger } from '../log.js';
import { watchX509Svid, WorkloadApiError, type X509Svid } from './workload-api.js';

export interface SvidFiles {
  files: TlsFiles;
  stop(): void;
}

/** Written beside, then renamed over: a reader never sees half a file. */
function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/**
 * The server SVID and trust bundle from the SPIFFE Workload API
 * (NEXUS_SPIFFE_SOCKET), kept current in `$NEXUS_DATA_DIR/spiffe/` (mode
 * 0700 dir, 0600 files). Both listeners already follow their TLS files
 * without a restart (and whatever else they do on a reload, e.g. re-checking
 * open connections against a new bundle), so a rotation pushed by the agent
 * takes the same path as a rotated file: one reload mechanism, not two.
 * An SVID of another trust domain is refused (at start-up: Nexus does not start).
 */
export async function startSvidFiles(config: Config, log: Logger, opts: { timeoutMs?: number } = {}): Promise<SvidFiles> {
  const socket = config.spiffeSocket!;
  const dir = path.join(config.dataDir, 'spiffe');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files: TlsFiles = { ca: path.join(dir, 'bundle.crt'), cert: path.join(dir, 'svid.crt'), key: path.join(dir, 'svid.key') };
  const write = (svid: X509Svid) => {
    const id = parseSpiffeId(svid.spiffeId);
    if ('invalid' in id || id.trustDomain !== config.trustDomain) {
      throw new WorkloadApiError(`the Workload API gave SVID ${svid.spiffeId}, not one of trust domain ${config.trustDomain} (NEXUS_TRUST_DOMAIN)`);
    }
    // Key first: until the certificate follows, the pair does not match and a reload keeps the previous one.
    writeAtomic(files.key, svid.keyPem);
    writeAtomic(files.cert, svid.certPem);
    writeAtomic(files.ca, svid.bundlePem);
    log.info({ spiffe_id: svid.spiffeId, not_after: svid.notAfter.toISOString(), socket }, 'server SVID from the SPIFFE Workload API');
  };
  const watch = watchX509Svid(socket, write, (err) => log.error({ err: { message: err.message } }, 'SPIFFE Workload API: keeping the previous server SVID'), opts);
  try {
    await watch.first;
  } catch (err) {
    watch.stop();
    throw new StartupError((err as Error).message);
  }
  return { files, stop: () => watch.stop() };
}
