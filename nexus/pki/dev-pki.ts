import fs from 'node:fs';
import path from 'node:path';
import type { Config, TlsFiles } from '../config/index.js';
import type { Logger } from '../log.js';
import { createCA, issueCert, loadIssuer } from './x509.js';

export interface DevPkiFiles extends TlsFiles {
  pilotCert: string;
  pilotKey: string;
}

export function devPkiFiles(dataDir: string): DevPkiFiles {
  const dir = path.join(dataDir, 'pki');
  return {
    ca: path.join(dir, 'ca.crt'),
    cert: path.join(dir, 'server.crt'),
    key: path.join(dir, 'server.key'),
    pilotCert: path.join(dir, 'pilot.crt'),
    pilotKey: path.join(dir, 'pilot.key'),
  };
}

function writePrivate(file: string, text: string): void {
  fs.writeFileSync(file, text, { mode: 0o600 });
}

/** Replaces `file` in one step (a reader, or the server's reload, never sees half of it). */
function replaceFile(file: string, text: string, mode: number): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text, { mode });
  fs.renameSync(tmp, file);
}

/** Dev SVIDs for clients are short-lived (renew with `nexus-pki issue`); SPIFFE revokes by expiry. */
export const DEV_SVID_DAYS = 30;

/**
 * The TLS files the server uses: NEXUS_TLS_* if given, else the dev PKI,
 * made on first start (CA, server SVID spiffe://<td>/nexus, pilot SVID).
 */
export async function ensureTlsFiles(config: Config, log: Logger): Promise<TlsFiles> {
  if (config.tls) return config.tls;
  const files = devPkiFiles(config.dataDir);
  if ([files.ca, files.cert, files.key].every((f) => fs.existsSync(f))) return files;
  fs.mkdirSync(path.dirname(files.ca), { recursive: true, mode: 0o700 });
  const caKeyFile = path.join(path.dirname(files.ca), 'ca.key');
  const ca = await createCA(`Nexus dev CA (${config.trustDomain})`, undefined, config.trustDomain);
  const td = config.trustDomain;
  // Each certificate does one job: the server's cannot be presented as a client identity.
  const server = await issueCert(ca, { uris: [`spiffe://${td}/nexus`], dns: ['localhost'], ips: ['127.0.0.1', '::1'], commonName: 'nexus', eku: ['serverAuth'] });
  const pilot = await issueCert(ca, { uris: [config.adminSpiffeId], commonName: 'pilot', eku: ['clientAuth'], notAfter: new Date(Date.now() + DEV_SVID_DAYS * 86400_000) });
  writePrivate(caKeyFile, ca.keyPem);
  writePrivate(files.key, server.keyPem);
  writePrivate(files.pilotKey, pilot.keyPem);
  fs.writeFileSync(files.cert, `${server.certPem}\n`);
  fs.writeFileSync(files.pilotCert, `${pilot.certPem}\n`);
  fs.writeFileSync(files.ca, `${ca.cert.toString('pem')}\n`);
  log.info({ dir: path.dirname(files.ca), server: `spiffe://${td}/nexus`, pilot: config.adminSpiffeId }, 'created the dev PKI (not for production)');
  return files;
}

/** Issues one more client SVID from the dev CA (nexus-pki issue); with the same --out and --name, renews one in place. */
export async function issueDevSvid(dataDir: string, spiffeId: string, outDir: string, name: string, days: number): Promise<{ cert: string; key: string; ca: string }> {
  const caDir = path.join(dataDir, 'pki');
  const caCert = path.join(caDir, 'ca.crt');
  const caKey = path.join(caDir, 'ca.key');
  if (!fs.existsSync(caKey)) throw new Error(`no dev CA under ${caDir}: start Nexus once (npm start) to create it`);
  const ca = await loadIssuer(fs.readFileSync(caCert, 'utf8'), fs.readFileSync(caKey, 'utf8'));
  const leaf = await issueCert(ca, { uris: [spiffeId], commonName: name, eku: ['clientAuth'], notAfter: new Date(Date.now() + days * 86400_000) });
  fs.mkdirSync(outDir, { recursive: true });
  const out = { cert: path.join(outDir, `${name}.crt`), key: path.join(outDir, `${name}.key`), ca: path.join(outDir, 'ca.crt') };
  // Key first: a client that reloads its pair never pairs a new certificate with the old key for long.
  replaceFile(out.key, leaf.keyPem, 0o600);
  replaceFile(out.cert, `${leaf.certPem}\n`, 0o644);
  if (path.resolve(out.ca) !== path.resolve(caCert)) fs.copyFileSync(caCert, out.ca);
  return out;
}
