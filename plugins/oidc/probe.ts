import { importJWK, type JWK } from 'jose';
import { BadRequestError } from '../../nexus/errors.js';
import { discoverJwksUri, fetchJwks, loadKeySetFile } from './issuers.js';
import type { IssuerConfig } from './types.js';

const ANYWAY = ' (to save it anyway: "verify": false; Pilot: --no-verify)';

/** The key types and curves each JWS algorithm signs with (RFC 7518, RFC 8037). */
function fitsAlgorithm(k: JWK, alg: string): boolean {
  if (alg.startsWith('RS') || alg.startsWith('PS')) return k.kty === 'RSA';
  if (alg === 'ES256') return k.kty === 'EC' && k.crv === 'P-256';
  if (alg === 'ES384') return k.kty === 'EC' && k.crv === 'P-384';
  if (alg === 'ES512') return k.kty === 'EC' && k.crv === 'P-521';
  if (alg === 'EdDSA') return k.kty === 'OKP' && (k.crv === 'Ed25519' || k.crv === 'Ed448');
  return false;
}

/** Whether jose would verify a signature of `alg` with this key: its type, its declared use and algorithm, and that it imports. */
async function verifiesWith(k: JWK, alg: string): Promise<boolean> {
  if (!fitsAlgorithm(k, alg)) return false;
  if (k.use !== undefined && k.use !== 'sig') return false;
  if (k.alg !== undefined && k.alg !== alg) return false;
  if (k.key_ops !== undefined && !k.key_ops.includes('verify')) return false;
  return importJWK(k, alg).then(
    () => true,
    () => false,
  );
}

/** How many of the set's keys verify at least one of `algorithms`. */
export async function usableKeyCount(keys: unknown[], algorithms: readonly string[]): Promise<number> {
  const fits = await Promise.all(keys.map(async (k) => typeof k === 'object' && k !== null && (await Promise.all(algorithms.map((a) => verifiesWith(k as JWK, a)))).some(Boolean)));
  return fits.filter(Boolean).length;
}

/**
 * What an issuer PUT checks before saving: a key-set file can be read and
 * holds a JWK Set; discovery (unless jwks_uri is given, or a static set
 * stands instead of it) finds the same issuer; its JWKS can be fetched; and
 * the keys together hold one for the issuer's algorithms. A failure is a 400
 * naming the step. Only the admin API asks this: a start from the config
 * file never waits on an IdP.
 */
export async function probeIssuer(cfg: IssuerConfig, timeoutMs: number): Promise<void> {
  const step = async <T>(rule: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw new BadRequestError(rule, `${(err as Error).message}${ANYWAY}`);
    }
  };
  const keys: unknown[] = [...(cfg.jwks?.keys ?? [])];
  const sources: string[] = cfg.jwks ? ['the inline jwks'] : [];
  if (cfg.jwks_file) {
    const file = cfg.jwks_file;
    keys.push(...(await step('jwks_file', () => loadKeySetFile(file))));
    sources.push(`the key-set file ${file}`);
  }
  if (cfg.jwks_uri !== null || sources.length === 0) {
    const uri = cfg.jwks_uri ?? (await step('issuer.discovery', () => discoverJwksUri(cfg.issuer, timeoutMs)));
    const { jwks } = await step('jwks', () => fetchJwks(uri, timeoutMs));
    keys.push(...jwks.keys);
    sources.push(`the JWKS at ${uri}`);
  }
  if ((await usableKeyCount(keys, cfg.algorithms)) === 0) {
    throw new BadRequestError('jwks.keys', `${sources.join(' and ')} ha${sources.length > 1 ? 've' : 's'} no key for ${cfg.algorithms.join(', ')} (of ${keys.length} key(s), none signs with these algorithms)${ANYWAY}`);
  }
}
