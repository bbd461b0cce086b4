import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { randomBytes, webcrypto } from 'node:crypto';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** A certificate and its private key, both PEM. */
export interface CertKeyPair {
  certPem: string;
  keyPem: string;
}

export interface Issuer {
  cert: x509.X509Certificate;
  key: CryptoKey;
}

export interface LeafSpec {
  /** URI SANs (SPIFFE IDs); an X509-SVID has exactly one. */
  uris: string[];
  dns?: string[];
  ips?: string[];
  commonName?: string;
  notBefore?: Date;
  notAfter?: Date;
  isCA?: boolean;
  /** Defaults to digitalSignature (+ keyCertSign for a CA). */
  keyUsage?: number;
  /** Extended key usages; default both (as SPIRE issues SVIDs); [] leaves the extension out. */
  eku?: Array<'serverAuth' | 'clientAuth'>;
}

const DAY = 24 * 3600 * 1000;

function pemKey(der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').trimEnd();
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // positive
  return b.toString('hex');
}

/**
 * A self-signed CA. With `trustDomain`, it names it as SPIRE's CAs do (a URI
 * SAN `spiffe://<trust domain>`), so a client given this CA knows it is a
 * SPIFFE bundle and authorizes servers by SPIFFE ID, never by host name.
 */
export async function createCA(commonName: string, days = 3650, trustDomain?: string): Promise<Issuer & { keyPem: string }> {
  const keys = await generateKeys();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + days * DAY),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ...(trustDomain ? [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${trustDomain}` }])] : []),
    ],
  });
  return { cert, key: keys.privateKey, keyPem: pemKey(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)) };
}

export async function issueCert(issuer: Issuer, spec: LeafSpec): Promise<CertKeyPair & { cert: x509.X509Certificate; key: CryptoKey }> {
  const keys = await generateKeys();
  const now = Date.now();
  const names: x509.JsonGeneralName[] = [
    ...spec.uris.map((value) => ({ type: 'url' as const, value })),
    ...(spec.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(spec.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const usage = spec.keyUsage ?? (spec.isCA ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature : x509.KeyUsageFlags.digitalSignature);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(spec.isCA ?? false, undefined, true),
    new x509.KeyUsagesExtension(usage, true),
    await x509.AuthorityKeyIdentifierExtension.create(issuer.cert),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  const eku = spec.eku ?? ['serverAuth', 'clientAuth'];
  if (eku.length) extensions.push(new x509.ExtendedKeyUsageExtension(eku.map((u) => x509.ExtendedKeyUsage[u])));
  if (names.length) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${spec.commonName ?? 'nexus svid'}`,
    issuer: issuer.cert.subject,
    notBefore: spec.notBefore ?? new Date(now - 60_000),
    notAfter: spec.notAfter ?? new Date(now + 365 * DAY),
    signingKey: issuer.key,
    publicKey: keys.publicKey,
    signingAlgorithm: ALG,
    extensions,
  });
  return { cert, key: keys.privateKey, certPem: cert.toString('pem'), keyPem: pemKey(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)) };
}

export async function loadIssuer(certPem: string, keyPem: string): Promise<Issuer> {
  const der = Buffer.from(keyPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const key = await webcrypto.subtle.importKey('pkcs8', der, ALG, false, ['sign']);
  return { cert: new x509.X509Certificate(certPem), key };
}
