// SPIFFE ID syntax only, with no certificate library: Pilot loads this on every start.

export interface SpiffeId {
  id: string;
  trustDomain: string;
  path: string;
}

const TD = /^[a-z0-9._-]+$/;
const SEG = /^[A-Za-z0-9._-]+$/;

/** Parses a SPIFFE ID by the spec; returns a reason string when it is not one. */
export function parseSpiffeId(raw: string): SpiffeId | { invalid: string } {
  if (raw.length > 2048) return { invalid: 'longer than 2048 bytes' };
  if (!raw.startsWith('spiffe://')) return { invalid: 'scheme is not spiffe (lowercase)' };
  const rest = raw.slice('spiffe://'.length);
  if (/[?#]/.test(rest)) return { invalid: 'has a query or fragment' };
  const slash = rest.indexOf('/');
  const td = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash);
  if (td.length === 0) return { invalid: 'empty trust domain' };
  if (td.includes('@')) return { invalid: 'has userinfo' };
  if (td.includes(':')) return { invalid: 'has a port' };
  if (!TD.test(td)) return { invalid: 'trust domain has characters outside [a-z0-9._-]' };
  if (path) {
    for (const s of path.slice(1).split('/')) {
      if (s === '') return { invalid: 'empty path segment or trailing slash' };
      if (s === '.' || s === '..') return { invalid: 'dot segment in path' };
      if (!SEG.test(s)) return { invalid: 'path has characters outside [A-Za-z0-9._-]' };
    }
  }
  return { id: raw, trustDomain: td, path };
}
