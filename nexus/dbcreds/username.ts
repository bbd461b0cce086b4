import { randomBytes } from 'node:crypto';
import type { Principal } from '../auth/principal.js';
import { BadRequestError } from '../errors.js';

/**
 * Database user names: who asked, readable in pg_stat_activity and the
 * target's own logs, yet safe and unique. Every value substituted is cut to
 * [a-z0-9_], the template's own text may hold only [A-Za-z0-9_-], and a
 * random suffix always ends the name, so two jobs never collide.
 */
export const DEFAULT_USERNAME_TEMPLATE = 'v_{{role}}_{{caller}}_{{run}}';
const VARS = ['role', 'caller', 'run', 'random', 'unix_time'] as const;
type Var = (typeof VARS)[number];
const PART = /\{\{\s*([^{}]*?)\s*\}\}/g;
/** PostgreSQL's NAMEDATALEN - 1. */
export const MAX_USERNAME_BYTES = 63;
const SUFFIX_CHARS = 10;

export function checkUsernameTemplate(t: string): void {
  for (const m of t.matchAll(PART)) {
    if (!(VARS as readonly string[]).includes(m[1]!)) throw new BadRequestError('username_template', `username_template has an unknown placeholder {{${m[1]}}}: only ${VARS.map((v) => `{{${v}}}`).join(', ')}`);
  }
  const literal = t.replace(PART, '');
  if (!/^[A-Za-z0-9_-]*$/.test(literal)) throw new BadRequestError('username_template', 'username_template may hold only A-Z a-z 0-9 _ - besides its placeholders');
}

/** The caller's identity as a lease records it (for people: never a token). */
export interface Caller {
  /** 'oidc:ISSUER:SUBJECT' or the SPIFFE ID. */
  id: string;
  /** Repository, project path or SPIFFE path: what the username carries. */
  name: string;
  /** The CI run (run_id, or GitLab's job id), if any. */
  run: string;
}

export function callerOf(p: Principal, claims?: Readonly<Record<string, unknown>>): Caller {
  if (p.kind === 'spiffe') return { id: p.spiffeId, name: p.spiffeId.replace(/^spiffe:\/\/[^/]+\/?/, ''), run: '' };
  const c = claims ?? {};
  const str = (k: string) => (typeof c[k] === 'string' || typeof c[k] === 'number' ? String(c[k]) : '');
  return {
    id: `oidc:${p.issuer}:${p.subject}`,
    name: str('repository') || str('project_path') || p.subject,
    run: str('run_id') || str('job_id') || str('pipeline_id'),
  };
}

function clean(v: string, max: number): string {
  return v
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, max);
}

export function renderUsername(template: string, role: string, caller: Caller, now: number): string {
  const values: Record<Var, string> = {
    role: clean(role, 16),
    caller: clean(caller.name, 24),
    run: clean(caller.run, 12),
    random: randomBytes(4).toString('hex'),
    unix_time: String(Math.floor(now / 1000)),
  };
  const body = template
    .replace(PART, (_m, k: string) => values[k as Var] ?? '')
    .replace(/[^A-Za-z0-9_-]/g, '_')
    .replace(/__+/g, '_')
    .replace(/_+$/, '')
    .toLowerCase();
  const suffix = `_${randomBytes(5).toString('hex')}`.slice(0, SUFFIX_CHARS + 1);
  const head = body.slice(0, MAX_USERNAME_BYTES - suffix.length) || 'v';
  return `${head}${suffix}`;
}
