import type { Context, Next } from 'koa';
import type { Principal } from '../auth/principal.js';
import { describePrincipal, type AuditEntry, type AuditTrail } from '../audit/trail.js';
import { NexusError, UnauthorizedError, UnavailableError } from '../errors.js';
import type { RequestState } from './errors.js';
import { statusOf } from './errors.js';

/** What a route tells the audit trail about the request it served. */
export interface AuditNote {
  action: string;
  path?: string;
  version?: number;
}

interface AuditState extends RequestState {
  audit?: AuditNote;
  principal?: Principal & { tokenId?: string };
}

export function noteAudit(ctx: Context, note: AuditNote): void {
  (ctx.state as AuditState).audit = note;
}

function reasonOf(err: unknown): string | undefined {
  if (err instanceof UnauthorizedError) return err.reason;
  if (err instanceof NexusError) return `${err.code}: ${err.message}`;
  return err ? 'internal error' : undefined;
}

/**
 * One audit record per request, written before the response leaves. If the
 * record cannot be written, a request that touches secrets fails closed (503)
 * instead of being served unrecorded.
 */
export function auditRequests(trail: AuditTrail, port: 'mtls' | 'oidc', touchesSecrets: (ctx: Context) => boolean) {
  return async function audit(ctx: Context, next: Next): Promise<void> {
    let error: unknown = null;
    try {
      await next();
    } catch (err) {
      error = err;
    }
    const state = ctx.state as AuditState;
    const note = state.audit ?? { action: `${ctx.method} ${(ctx as { _matchedRoute?: string })._matchedRoute ?? ctx.path}` };
    const status = error ? statusOf(error) : ctx.status;
    const entry: AuditEntry = {
      request_id: state.requestId,
      port,
      principal: describePrincipal(state.principal),
      action: note.action,
      ...(note.path ? { path: note.path } : {}),
      ...(note.version ? { version: note.version } : {}),
      decision: status < 400 ? 'allow' : [401, 403, 429].includes(status) ? 'deny' : 'error',
      status,
      ...(error ? { reason: reasonOf(error) } : {}),
      ...(state.principal?.kind === 'oidc' && state.principal.tokenId ? { token_id: state.principal.tokenId } : {}),
    };
    if (!(await trail.record(entry)) && touchesSecrets(ctx)) {
      throw new UnavailableError('the audit trail cannot be written; refusing to serve secrets unrecorded');
    }
    if (error) throw error;
  };
}
