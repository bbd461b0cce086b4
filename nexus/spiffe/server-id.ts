// A client's side of SPIFFE authentication: Nexus is authorized by its SPIFFE
// ID, not its host name. Shared by Pilot and nexus-ci; no gRPC and no
// certificate library (Node's TLS already parsed the peer), so neither the CI
// bundle nor Pilot's start pays for it.
import type { PeerCertificate } from 'node:tls';
import { parseSpiffeId } from '../auth/spiffe-id.js';

/** The server's certificate is not the expected X509-SVID: a refusal (exit 1), the message says why. */
export class ServerIdentityError extends Error {}

/** NEXUS_SERVER_SPIFFE_ID is not a SPIFFE ID: a usage error (exit 2). */
export class ServerIdConfigError extends Error {}

/** The one URI SAN of an X509-SVID (Node's subjectaltname text), or a reason it is not one. */
export function svidId(san: string | undefined): string | { invalid: string } {
  const uris = (san ?? '').split(', ').filter((n) => n.startsWith('URI:'));
  if (uris.length !== 1) return { invalid: `it has ${uris.length} URI SANs, an X509-SVID has exactly one` };
  const parsed = parseSpiffeId(uris[0]!.slice(4));
  return 'invalid' in parsed ? { invalid: `its URI SAN is not a SPIFFE ID (${parsed.invalid})` } : parsed.id;
}

/**
 * The SPIFFE ID the server must present: `configured` (NEXUS_SERVER_SPIFFE_ID)
 * or, by default, spiffe://<the client's own trust domain>/nexus.
 */
export function expectedServerId(clientTrustDomain: string, configured: string | undefined): string {
  if (configured === undefined || configured === '') return `spiffe://${clientTrustDomain}/nexus`;
  const parsed = parseSpiffeId(configured);
  if ('invalid' in parsed) throw new ServerIdConfigError(`NEXUS_SERVER_SPIFFE_ID is not a SPIFFE ID: ${parsed.invalid}`);
  return parsed.id;
}

/**
 * A TLS checkServerIdentity that authorizes the server by SPIFFE ID, as
 * go-spiffe's AuthorizeID does: its chain was verified against the bundle by
 * TLS already; here its leaf must be an X509-SVID (one URI SAN, not a CA)
 * whose ID is `expected`. Host names and IP SANs play no part, so a
 * SPIRE-issued server SVID (URI SAN only) works, and another workload's SVID
 * with a matching IP SAN does not.
 */
export function authorizeServer(expected: string, origin: string): (host: string, cert: PeerCertificate) => ServerIdentityError | undefined {
  return (_host, cert) => {
    const id = svidId(cert.subjectaltname);
    if (typeof id !== 'string') return new ServerIdentityError(`the server at ${origin} is not an X509-SVID: ${id.invalid}`);
    if (cert.ca) return new ServerIdentityError(`the server at ${origin} presented a CA certificate, not an X509-SVID`);
    if (id !== expected) return new ServerIdentityError(`the server at ${origin} presented ${id}, expected ${expected} (NEXUS_SERVER_SPIFFE_ID)`);
    return undefined;
  };
}
