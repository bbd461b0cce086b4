import { decodeJwt } from 'jose';
import { TokenNotYetValidError, type UnauthorizedError } from '../../nexus/errors.js';
import { LEEWAY_S } from './verify.js';

const EARLY = new Set(['iat_in_future', 'not_yet_valid']);
/** Beyond this, a token "from the future" is no clock drift worth waiting for: a plain 401. */
const MAX_SKEW_WAIT_S = 30;

/**
 * A refusal for a token whose nbf or iat lies a little ahead of this server's
 * clock (a runner's clock running fast) becomes TokenNotYetValidError, with
 * the seconds until this server would take it: the client waits that long and
 * presents the same token again. Any other refusal is passed on unchanged.
 */
export function clockSkewRefusal(err: UnauthorizedError, jwt: string | undefined, nowS = Date.now() / 1000): UnauthorizedError {
  if (!EARLY.has(err.reason) || jwt === undefined) return err;
  let claims: ReturnType<typeof decodeJwt>;
  try {
    claims = decodeJwt(jwt);
  } catch {
    return err;
  }
  const at = Math.max(typeof claims.nbf === 'number' ? claims.nbf : 0, typeof claims.iat === 'number' ? claims.iat : 0);
  const wait = Math.ceil(at - LEEWAY_S - nowS);
  return wait > 0 && wait <= MAX_SKEW_WAIT_S ? new TokenNotYetValidError(err.reason, wait) : err;
}
