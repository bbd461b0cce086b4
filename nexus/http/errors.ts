import { randomBytes } from 'node:crypto';
import type { Context, Next } from 'koa';
import { NexusError, RateLimitedError, TokenNotYetValidError, UnauthorizedError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { z } from '../schema.js';

/** The one map from error codes to HTTP statuses. */
const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  unauthorized: 401,
  token_not_yet_valid: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  rate_limited: 429,
  unavailable: 503,
  data_integrity: 500,
  config: 500,
  startup: 500,
  internal: 500,
};

const KOA_CODES: Record<number, ErrorCode> = { 400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 405: 'bad_request', 413: 'too_large' };

/** The HTTP status an error maps to (the same map the error handler uses). */
export function statusOf(err: unknown): number {
  if (err instanceof NexusError) return (err as { status?: number }).status ?? STATUS[err.code];
  const s = (err as { status?: unknown }).status;
  return typeof s === 'number' && (err as { expose?: boolean }).expose ? s : 500;
}

/** Every error on both ports. */
export const ErrorBody = z
  .object({
    error: z.object({
      code: z.enum(Object.keys(STATUS) as [ErrorCode, ...ErrorCode[]]),
      message: z.string().describe('for people; never a secret value, key or token'),
      request_id: z.string().describe('as in the X-Request-Id header'),
    }),
  })
  .meta({ id: 'Error' });
export type ErrorBody = z.output<typeof ErrorBody>;

export interface RequestState {
  requestId: string;
}

/**
 * Request id and no-store on every response, and every error rendered as the
 * contract's JSON. `redact401`: the OIDC port says only that the token was
 * not accepted (the reason goes to the log and audit).
 */
// Request ids: a random per-process prefix and a counter. Unique and not
// guessable across restarts, without a CSPRNG call per request (measured ~5%
// of a secret read).
const ID_PREFIX = randomBytes(6).toString('base64url');
let idCounter = 0;

export function newRequestId(): string {
  idCounter = (idCounter + 1) % Number.MAX_SAFE_INTEGER;
  return `req_${ID_PREFIX}${idCounter.toString(36)}`;
}

export function errorHandling(log: Logger, opts: { port: string; redact401?: boolean }) {
  return async function handleErrors(ctx: Context, next: Next): Promise<void> {
    const requestId = newRequestId();
    (ctx.state as RequestState).requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    ctx.set('Cache-Control', 'no-store');
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new NexusError('not_found', 'no such route');
      if (ctx.status === 405 && (ctx.body === undefined || typeof ctx.body === 'string')) {
        throw Object.assign(new NexusError('bad_request', `method ${ctx.method} is not allowed here`), { status: 405 });
      }
    } catch (err) {
      let code: ErrorCode = 'internal';
      let status = 500;
      let message = 'internal error';
      if (err instanceof NexusError) {
        code = err.code;
        status = (err as { status?: number }).status ?? STATUS[code];
        message = err.message;
        if (code === 'data_integrity') message = 'stored data failed an integrity check';
        if (err instanceof RateLimitedError || err instanceof TokenNotYetValidError) ctx.set('Retry-After', String(err.retryAfterS));
        if (err instanceof UnauthorizedError) {
          if (opts.redact401) message = 'the token was not accepted';
          log.info({ request_id: requestId, port: opts.port, reason: err.reason }, 'authentication refused');
        }
      } else if (typeof (err as { status?: unknown }).status === 'number' && (err as { expose?: boolean }).expose) {
        // Errors thrown by koa itself (ctx.throw, body limits).
        status = (err as { status: number }).status;
        code = KOA_CODES[status] ?? 'bad_request';
        message = (err as Error).message;
      }
      if (status >= 500) log.error({ request_id: requestId, port: opts.port, err }, 'request failed');
      ctx.status = status;
      ctx.body = { error: { code, message, request_id: requestId } } satisfies ErrorBody;
    }
  };
}

/** Answers a request the HTTP parser refused (oversized headers, garbage) with the error JSON. */
export function clientErrorResponse(err: NodeJS.ErrnoException): string {
  const [status, reason, code, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [413, 'Payload Too Large', 'too_large', 'request headers are too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'bad_request', 'the request took too long to arrive']
        : err.code === 'HPE_INVALID_METHOD'
          ? // Node's parser knows no LIST; Vault's clients can say it another way.
            [405, 'Method Not Allowed', 'bad_request', 'unknown HTTP method (a Vault LIST: send GET ?list=true instead)']
          : [400, 'Bad Request', 'bad_request', 'malformed request'];
  const body = JSON.stringify({ error: { code, message, request_id: newRequestId() } });
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}
