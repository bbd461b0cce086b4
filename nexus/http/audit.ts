import { createHash } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Principal } from '../auth/principal.js';
import { describePrincipal, type AuditEntry, type AuditTrail } from '../audit/trail.js';
import { ForbiddenError, NexusError, UnauthorizedError, UnavailableError } from '../errors.js';
import type { RequestSignals } from '../signals/engine.js';
import { principalKey } from '../signals/principal-key.js';
import type { RequestState } from './errors.js';
import { statusOf } from './errors.js';

/** What a route tells the audit trail about the request it served. */
export interface AuditNote {
  action: string;
  path?: string;
  version?: number;
  /** The versions a delete, undelete or destroy named. */
  versions?: number[];
  /** The object an admin route changes or reads (policy, issuer or role name). */
  object?: { kind: string; name: string; digest?: string };
  /** How many credentials the request revoked. */
  revoked?: number;
}

interface AuditState extends RequestState {
  audit?: AuditNote;
  principal?: Principal & { tokenId?: string };
  /** Set by auditRequests: writes this request's intent record. */
  recordIntent?: () => Promise<void>;
  intentRecorded?: boolean;
  /** Set by auditRequests: writes one allowed-read record per note. */
  recordReads?: (notes: AuditNote[]) => Promise<void>;
}

export function noteAudit(ctx: Context, note: AuditNote): void {
  const state = ctx.state as AuditState;
  state.audit = { ...state.audit, ...note };
}

/**
 * The rule for every change (secret writes, deletes, undeletes, destroys,
 * configuration): its intent is recorded before it is committed, and an
 * unwritable trail refuses it (503) with nothing committed. The request's
 * own record, written after, is the outcome. Routes wrap their commit in this.
 */
export async function changeAudited<T>(ctx: Context, commit: () => T | Promise<T>): Promise<T> {
  const intent = (ctx.state as AuditState).recordIntent;
  if (!intent) throw new Error('changeAudited used outside auditRequests');
  await intent();
  return commit();
}

/**
 * One record per secret a request hands out beside its own (a page of a
 * subtree with data), written before the values leave: an unwritable trail
 * refuses the request (503) rather than serve values unrecorded.
 */
export async function auditReads(ctx: Context, notes: AuditNote[]): Promise<void> {
  const reads = (ctx.state as AuditState).recordReads;
  if (!reads) throw new Error('auditReads used outside auditRequests');
  if (notes.length) await reads(notes);
}

/** A digest of a definition as sent (keys in a fixed order), so a record says what a change set without holding it. */
export function definitionDigest(body: unknown): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canonical) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])])) : v;
  return `sha256:${createHash('sha256').update(JSON.stringify(canonical(body))).digest('hex')}`;
}

/** Names the configuration object an admin route reads or changes (and, for a change, the digest of its new definition). */
export function noteObject(ctx: Context, kind: string, verb: string, name?: string, body?: unknown): void {
  noteAudit(ctx, { action: `${kind}.${verb}`, ...(name !== undefined ? { object: { kind, name, ...(body !== undefined ? { digest: definitionDigest(body) } : {}) } } : {}) });
}

function reasonOf(err: unknown): string | undefined {
  if (err instanceof UnauthorizedError) return err.reason;
  if (err instanceof ForbiddenError && err.reason) return err.reason;
  if (err instanceof NexusError) return `${err.code}: ${err.message}`;
  return err ? 'internal error' : undefined;
}

interface MatchedLayer {
  path: unknown;
  methods: string[];
}

/**
 * The route template a request matched (`/v1/secrets/{path}`), as the
 * contract writes it; `unmatched` otherwise. Taken from the route layers the
 * routers matched (koa's _matchedRoute may hold a middleware's regex source
 * when a router-level middleware threw).
 */
export function routeTemplate(ctx: Context): string {
  const layers = (ctx as { matched?: MatchedLayer[] }).matched ?? [];
  for (let i = layers.length - 1; i >= 0; i--) {
    const l = layers[i]!;
    if (typeof l.path === 'string' && l.methods.includes(ctx.method)) return templateOf(l.path);
  }
  return 'unmatched';
}

// Route paths are few and fixed: each is rewritten once, not per request.
const templates = new Map<string, string>();

function templateOf(path: string): string {
  let t = templates.get(path);
  if (t === undefined) {
    // An escaped colon (`/roles\\:test`) is a literal verb, not a parameter.
    t = path.replace(/\{\*rest\}$/, '{path}').replace(/(?<!\\):([A-Za-z_]+)/g, '{$1}').replace(/\\:/g, ':');
    if (t.length > 1) t = t.replace(/\/$/, '');
    templates.set(path, t);
  }
  return t;
}

/** Liveness and readiness answer even when the trail cannot be written: they are how an operator sees it. */
export function isHealthCheck(ctx: Context): boolean {
  return ctx.method === 'GET' && (ctx.path === '/healthz' || ctx.path === '/readyz');
}

/**
 * One audit record per request (two for a change: intent, then outcome),
 * written before the response leaves. If the record cannot be written, the
 * request fails closed (503), whatever its route, method or spelling; only
 * health checks answer anyway.
 */
export function auditRequests(trail: AuditTrail, port: 'mtls' | 'oidc', signals?: RequestSignals) {
  return async function audit(ctx: Context, next: Next): Promise<void> {
    const state = ctx.state as AuditState;
    // One flat literal per record (no spreads): this runs on every request.
    const entry = (phase: AuditEntry['phase'], status?: number, error?: unknown, note = state.audit): AuditEntry => {
      const route = routeTemplate(ctx);
      const p = state.principal;
      return {
        request_id: state.requestId,
        port,
        principal: describePrincipal(p),
        action: note?.action ?? `${ctx.method} ${route}`,
        method: ctx.method,
        route,
        // A request refused before its route ran (a failed login) still says what it asked for.
        path: note?.path ?? ctx.path,
        version: note?.version || undefined,
        versions: note?.versions,
        object: note?.object,
        phase,
        decision: status === undefined || status < 400 ? 'allow' : [401, 403, 429].includes(status) ? 'deny' : 'error',
        status,
        reason: error ? reasonOf(error) : undefined,
        token_id: p?.kind === 'oidc' ? p.tokenId || undefined : undefined,
        revoked: note?.revoked,
      };
    };
    state.recordIntent = async () => {
      if (!(await trail.record(entry('intent')))) {
        throw new UnavailableError('the audit trail cannot be written; refusing to make a change unrecorded');
      }
      state.intentRecorded = true;
    };
    state.recordReads = async (notes) => {
      const written = await Promise.all(notes.map((n) => trail.record(entry(undefined, 200, undefined, n))));
      if (written.includes(false)) throw new UnavailableError('the audit trail cannot be written; refusing to serve unrecorded');
    };
    let error: unknown = null;
    try {
      await next();
    } catch (err) {
      error = err;
    }
    const status = error ? statusOf(error) : ctx.status;
    const written = await trail.record(entry(state.intentRecorded ? 'outcome' : undefined, status, error));
    // A committed change whose intent is on record keeps its answer: saying 503 for a change that happened would be a lie.
    if (!written && !state.intentRecorded && !isHealthCheck(ctx)) {
      throw new UnavailableError('the audit trail cannot be written; refusing to serve unrecorded');
    }
    if (signals) feedSignals(signals, ctx, port, state, status);
    if (error) throw error;
  };
}

/**
 * The decision just recorded, to the access signals: a committed change to a
 * named configuration object (policy, issuer, role, and any later kind that
 * notes its object and commits through changeAudited) is a config_change;
 * any other request is an observation. Synchronous, no storage.
 */
function feedSignals(signals: RequestSignals, ctx: Context, port: 'mtls' | 'oidc', state: AuditState, status: number): void {
  const note = state.audit;
  const address = ctx.req.socket.remoteAddress ?? '';
  if (state.intentRecorded && note?.object && status < 400) {
    const { kind, name } = note.object;
    signals.engine.configChanged({ port, principal: principalKey(state.principal), address, kind, verb: note.action.startsWith(`${kind}.`) ? note.action.slice(kind.length + 1) : note.action, name });
    return;
  }
  if (!signals.requests || isHealthCheck(ctx)) return;
  const p = state.principal;
  signals.requests.observe({ port, principal: principalKey(p), address, action: note?.action ?? '', path: note?.path, status, tokenId: p?.kind === 'oidc' ? p.tokenId : undefined });
}
