import type { TLSSocket } from 'node:tls';
import type { Context, Next } from 'koa';
import { UnauthorizedError } from '../errors.js';
import type { Principal } from './principal.js';
import { principalFromSvid } from './spiffe.js';
import type { TrustBundle } from './trust-bundle.js';

interface AuthState {
  principal?: Principal;
}

/** A connection's SVID, checked once, with what must be checked again on every request. */
interface Verdict {
  principal: Principal;
  /** ms since epoch: the certificate's notAfter. */
  notAfter: number;
  /** The trust-bundle generation the chain was last verified under. */
  generation: number;
}

// A TLS connection's peer certificate cannot change, so the SVID rules run
// once per connection; its lifetime and its chain (against a reloaded
// bundle) are checked on every keep-alive request.
const verdicts = new WeakMap<TLSSocket, Verdict | UnauthorizedError>();

const NOT_TRUSTED = 'a client certificate chaining to the trust bundle is required';

function firstVerdict(socket: TLSSocket, trustDomain: string, trust: TrustBundle): Verdict | UnauthorizedError {
  if (!socket.authorized) return new UnauthorizedError(`tls.${socket.authorizationError ?? 'no_client_certificate'}`, NOT_TRUSTED);
  const leaf = socket.getPeerX509Certificate();
  // The handshake verified the chain against the bundle of its moment; a
  // reload may have come between it and this first request (or, were
  // resumption on, long before it), so verify against the bundle of now.
  if (!leaf || !trust.verifies(leaf)) return new UnauthorizedError('tls.chain_no_longer_trusted', NOT_TRUSTED);
  try {
    return { principal: principalFromSvid(leaf.raw, trustDomain), notAfter: Date.parse(leaf.validTo), generation: trust.generation };
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
    return new UnauthorizedError(err.reason, 'the client certificate is not a valid X509-SVID for this trust domain');
  }
}

/**
 * Turns the TLS connection's client certificate into a SPIFFE Principal,
 * before any route runs, and keeps it honest for the connection's life: an
 * SVID past its notAfter, or whose chain no longer verifies against a
 * reloaded trust bundle, is refused (401) and the connection closed.
 */
export function spiffeAuth(trustDomain: string, trust: TrustBundle, onRefused?: (remote: string | undefined, reason: string) => void) {
  return async function authenticate(ctx: Context, next: Next): Promise<void> {
    const socket = ctx.req.socket as TLSSocket;
    let verdict = verdicts.get(socket);
    if (!verdict) {
      verdict = firstVerdict(socket, trustDomain, trust);
      verdicts.set(socket, verdict);
      // Once per connection: the refusal is the certificate's, not the request's.
      if (verdict instanceof UnauthorizedError) onRefused?.(socket.remoteAddress, verdict.reason);
    }
    if (!(verdict instanceof UnauthorizedError)) {
      if (Date.now() > verdict.notAfter) verdict = new UnauthorizedError('svid.expired', 'the client certificate has expired');
      else if (verdict.generation !== trust.generation) {
        if (trust.verifies(socket.getPeerX509Certificate())) verdict.generation = trust.generation;
        else verdict = new UnauthorizedError('tls.chain_no_longer_trusted', NOT_TRUSTED);
      }
      if (verdict instanceof UnauthorizedError) verdicts.set(socket, verdict);
    }
    if (verdict instanceof UnauthorizedError) {
      // Nothing more will be accepted on this connection.
      ctx.set('Connection', 'close');
      throw verdict;
    }
    (ctx.state as AuthState).principal = verdict.principal;
    await next();
  };
}

export function principalOf(ctx: Context): Principal {
  const p = (ctx.state as AuthState).principal;
  if (!p) throw new UnauthorizedError('no_principal');
  return p;
}
