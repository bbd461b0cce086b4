import { UnauthorizedError } from '../errors.js';
import { x509 } from '../pki/x509.js';
import type { SpiffePrincipal } from './principal.js';
import { parseSpiffeId } from './spiffe-id.js';

export { parseSpiffeId, type SpiffeId } from './spiffe-id.js';

/**
 * The X509-SVID rules for a leaf that already chained to the trust bundle:
 * exactly one URI SAN holding a valid SPIFFE ID of our trust domain, not a CA,
 * digitalSignature key usage. Throws UnauthorizedError with the precise reason.
 */
export function principalFromSvid(der: Buffer, trustDomain: string): SpiffePrincipal {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(new Uint8Array(der));
  } catch {
    throw new UnauthorizedError('svid.unparsable');
  }
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (bc?.ca) throw new UnauthorizedError('svid.is_ca');
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  if (!ku || (ku.usages & x509.KeyUsageFlags.digitalSignature) === 0) throw new UnauthorizedError('svid.no_digital_signature');
  if (ku.usages & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign)) throw new UnauthorizedError('svid.ca_key_usage');
  // An SVID may carry both EKUs (SPIRE's do); one restricted to serverAuth is a server's, never a client identity.
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  if (eku && !eku.usages.includes(x509.ExtendedKeyUsage.clientAuth)) throw new UnauthorizedError('svid.no_client_auth_eku');
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const uris = (san?.names.items ?? []).filter((n) => n.type === 'url').map((n) => n.value);
  if (uris.length !== 1) throw new UnauthorizedError(`svid.uri_san_count=${uris.length}`);
  const parsed = parseSpiffeId(uris[0]!);
  if ('invalid' in parsed) throw new UnauthorizedError(`svid.malformed_id: ${parsed.invalid}`);
  if (parsed.trustDomain !== trustDomain) throw new UnauthorizedError(`svid.trust_domain=${parsed.trustDomain}`);
  return { kind: 'spiffe', spiffeId: parsed.id, trustDomain: parsed.trustDomain };
}
