// How nexus-ci and the action trust the OIDC port when a CA is given (--ca,
// $NEXUS_CA, the action's `ca`). In the default private-CA shape that CA is
// the SPIFFE trust bundle, whose other workloads may hold SVIDs that carry
// Nexus's host name or IP (SPIRE's usually allow server use): a host-name
// check would hand them the job's JWT. So when the bundle or the server's
// leaf speaks SPIFFE, the server is authorized by SPIFFE ID, as Pilot does;
// an ordinary private CA (web certificates, no SPIFFE IDs) and a publicly
// trusted certificate (no CA given) keep the host-name check.
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { parseSpiffeId } from '../../nexus/auth/spiffe-id.js';
import { authorizeServer, expectedServerId, ServerIdConfigError, ServerIdentityError, svidId } from '../../nexus/spiffe/server-id.js';
import type { TlsSetup } from './client.js';

/** The trust domains named by the CA certificates' SPIFFE URI SANs (SPIRE's CAs carry spiffe://<trust domain>). */
function bundleTrustDomains(caPem: string): string[] {
  const domains = new Set<string>();
  for (const pem of caPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) {
    let san: string | undefined;
    try {
      san = new X509Certificate(pem).subjectAltName;
    } catch {
      continue; // TLS reports an unusable CA itself
    }
    for (const name of (san ?? '').split(', ')) {
      const id = name.startsWith('URI:') ? parseSpiffeId(name.slice(4)) : undefined;
      if (id && !('invalid' in id)) domains.add(id.trustDomain);
    }
  }
  return [...domains];
}

const SPIFFE_URI_SAN = /(?:^|, )URI:spiffe:\/\//;

/**
 * `ca` as the only CA, and the server authorized by SPIFFE ID when
 * `serverIdSetting` (NEXUS_SERVER_SPIFFE_ID) is set, when the CA names a
 * trust domain, or when the server's leaf carries a SPIFFE ID; the expected
 * ID is then the setting, or spiffe://<the CA's trust domain, else the
 * leaf's>/nexus. Otherwise, the host name.
 */
export function caTrust(ca: string, url: string, serverIdSetting: string | undefined): TlsSetup {
  const origin = new URL(url).origin;
  const domains = bundleTrustDomains(ca);
  // Decided now, so that a bad setting is a usage error rather than a refused handshake
  // (a configured ID wins: the trust domain argument is not read).
  const configured = serverIdSetting ? expectedServerId('', serverIdSetting) : undefined;
  if (configured === undefined && domains.length > 1) {
    throw new ServerIdConfigError(`the CA holds the bundles of several trust domains (${domains.join(', ')}): set NEXUS_SERVER_SPIFFE_ID to Nexus's SPIFFE ID`);
  }
  return {
    ca,
    authorizeServer: (host, cert) => {
      if (configured === undefined && domains.length === 0 && !SPIFFE_URI_SAN.test(cert.subjectaltname ?? '')) {
        const err = tls.checkServerIdentity(host, cert);
        return err && new ServerIdentityError(`the server at ${origin}: ${err.message}`);
      }
      let expected = configured ?? (domains.length === 1 ? `spiffe://${domains[0]}/nexus` : undefined);
      if (expected === undefined) {
        const id = svidId(cert.subjectaltname);
        if (typeof id !== 'string') return new ServerIdentityError(`the server at ${origin} is not an X509-SVID: ${id.invalid}`);
        expected = `spiffe://${(parseSpiffeId(id) as { trustDomain: string }).trustDomain}/nexus`;
      }
      return authorizeServer(expected, origin)(host, cert);
    },
  };
}
