import type { TLSSocket } from 'node:tls';
import type { Context, Next } from 'koa';
import { UnauthorizedError } from '../errors.js';
import type { Principal } from './principal.js';
import { principalFromSvid } from './spiffe.js';

interface AuthState {
  principal?: Principal;
}

// A TLS connection's peer certificate cannot change, so its verdict is
// computed once per connection (keep-alive requests reuse it).
const verdicts = new WeakMap<TLSSocket, Principal | UnauthorizedError>();

/** Turns the TLS connection's client certificate into a SPIFFE Principal, before any route runs. */
export function spiffeAuth(trustDomain: string) {
  return async function authenticate(ctx: Context, next: Next): Promise<void> {
    const socket = ctx.req.socket as TLSSocket;
    let verdict = verdicts.get(socket);
    if (!verdict) {
      if (!socket.authorized) {
        verdict = new UnauthorizedError(`tls.${socket.authorizationError ?? 'no_client_certificate'}`, 'a client certificate chaining to the trust bundle is required');
      } else {
        const peer = socket.getPeerCertificate();
        try {
          verdict = principalFromSvid(peer.raw, trustDomain);
        } catch (err) {
          if (!(err instanceof UnauthorizedError)) throw err;
          verdict = new UnauthorizedError(err.reason, 'the client certificate is not a valid X509-SVID for this trust domain');
        }
      }
      verdicts.set(socket, verdict);
    }
    if (verdict instanceof UnauthorizedError) throw verdict;
    (ctx.state as AuthState).principal = verdict;
    await next();
  };
}

export function principalOf(ctx: Context): Principal {
  const p = (ctx.state as AuthState).principal;
  if (!p) throw new UnauthorizedError('no_principal');
  return p;
}
