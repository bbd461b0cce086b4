import { X509Certificate } from 'node:crypto';

/**
 * The trust bundle the mTLS port verifies client SVIDs against, shared by
 * the listener (which replaces it on reload) and the SPIFFE auth middleware
 * (which re-checks open connections when it changes). `generation` counts
 * replacements, so a connection verified under this bundle is not re-checked.
 */
export class TrustBundle {
  private cas: X509Certificate[] = [];
  generation = 0;

  replace(pems: string[]): void {
    this.cas = pems.map((p) => new X509Certificate(p));
    this.generation++;
  }

  /**
   * True when the peer's chain, as presented, leads by valid signatures to a
   * CA of the current bundle that is valid now. The handshake verified it
   * against the bundle of its day; this is the check for a later bundle
   * (and for a session the handshake did not verify again). `leaf` is the
   * socket's getPeerX509Certificate(): its issuerCertificate links are the
   * chain the peer sent (cheaper than getPeerCertificate(true), which builds
   * the legacy object of every certificate in it).
   */
  verifies(leaf: X509Certificate | undefined, now = Date.now()): boolean {
    let cert = leaf;
    for (let depth = 0; cert && depth < 8; depth++) {
      // Bundle entries are trust anchors by configuration (a v1 root has no basicConstraints).
      if (this.cas.some((ca) => validAt(ca, now) && cert!.checkIssued(ca) && cert!.verify(ca.publicKey))) return true;
      const next: X509Certificate | undefined = cert.issuerCertificate;
      if (!next || next.raw.equals(cert.raw)) return false;
      if (!next.ca || !validAt(next, now) || !signedBy(cert, next)) return false;
      cert = next;
    }
    return false;
  }
}

function validAt(c: X509Certificate, now: number): boolean {
  return Date.parse(c.validFrom) <= now && now <= Date.parse(c.validTo);
}

/** An intermediate from the peer's chain: it must be a CA. */
function signedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  return issuer.ca && cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}
