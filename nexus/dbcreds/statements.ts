import pg from 'pg';
import { BadRequestError } from '../errors.js';
import { neutraliseOwned } from './neutralise.js';
import type { Step } from './target.js';

/**
 * Creation and revocation statements: the three placeholders are replaced by
 * values quoted with the pg driver's own routines (an identifier for
 * {{name}}, literals for the others), never pasted. Anything else between
 * {{ }} is refused when the role is written, so a typo cannot reach the
 * target database as text.
 */
const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;
const KNOWN = new Set(['name', 'password', 'expiration']);

/** Where the default revocation takes the owner rights off what the user made (see neutralise.ts). */
export const NEUTRALISE_OWNED = Symbol('neutralise owned');

/**
 * The default revocation, in two transactions: the user can no longer log in
 * once the first commits, so no session starts between ending its sessions
 * and dropping it in the second.
 */
export const DEFAULT_REVOCATION: (string | typeof NEUTRALISE_OWNED)[][] = [
  [
    'ALTER ROLE {{name}} NOLOGIN',
    // A CREATEROLE admin (not a superuser) needs the user's privileges to end its sessions and take what it owns.
    'GRANT {{name}} TO CURRENT_USER',
  ],
  [
    // Open sessions end with the credential, not when the job disconnects.
    'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = {{name_literal}}',
    // Its SECURITY DEFINER functions and its views must not run with the admin's rights once the admin owns them.
    NEUTRALISE_OWNED,
    'REASSIGN OWNED BY {{name}} TO CURRENT_USER',
    'DROP OWNED BY {{name}}',
    'DROP ROLE IF EXISTS {{name}}',
  ],
];

/**
 * Checks statements as written by an admin: known placeholders only; creation
 * ones name the user and give it its lease's end (VALID UNTIL), so a user
 * outlives a Nexus that is down only until its lease would have ended.
 */
export function checkStatements(field: string, statements: string[], opts: { needName: boolean; needExpiration?: boolean; allowed?: Set<string> }): void {
  const allowed = opts.allowed ?? KNOWN;
  let named = false;
  let expiring = false;
  statements.forEach((s, i) => {
    if (s.includes('\0')) throw new BadRequestError(field, `${field}[${i}] holds a NUL character`);
    for (const m of s.matchAll(PLACEHOLDER)) {
      if (!allowed.has(m[1]!)) throw new BadRequestError(field, `${field}[${i}] has an unknown placeholder {{${m[1]}}}: only ${[...allowed].map((k) => `{{${k}}}`).join(', ')}`);
      if (m[1] === 'name') named = true;
      if (m[1] === 'expiration') expiring = true;
    }
    // A brace pair the pattern above did not take ({{{x}}}, {{a{b}}) is refused too.
    if (s.replace(PLACEHOLDER, '').includes('{{')) throw new BadRequestError(field, `${field}[${i}] has a malformed placeholder`);
  });
  if (opts.needName && !named) throw new BadRequestError(field, `${field} must create the user {{name}}`);
  if (opts.needExpiration && !expiring) throw new BadRequestError(field, `${field} must give the user VALID UNTIL {{expiration}} (e.g. CREATE ROLE {{name}} LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}): every user ends with its lease, even when Nexus is down`);
}

export interface StatementValues {
  name: string;
  password?: string;
  expiration?: Date;
}

/** One statement with its placeholders quoted. */
export function render(statement: string, v: StatementValues): string {
  return statement.replace(PLACEHOLDER, (_m, key: string) => {
    switch (key) {
      case 'name':
        return pg.escapeIdentifier(v.name);
      case 'name_literal':
        return pg.escapeLiteral(v.name);
      case 'password':
        if (v.password === undefined) throw new BadRequestError('statements', '{{password}} is not available in revocation statements');
        return pg.escapeLiteral(v.password);
      case 'expiration':
        if (v.expiration === undefined) throw new BadRequestError('statements', '{{expiration}} is not available here');
        return pg.escapeLiteral(v.expiration.toISOString());
      default:
        // checkStatements refused it when the role was written.
        throw new BadRequestError('statements', `unknown placeholder {{${key}}}`);
    }
  });
}

/** The revocation a role asks for (one transaction), or the default one, rendered for user `name`: transactions of steps. */
export function revocationOf(statements: string[] | null, name: string): Step[][] {
  if (statements) return [statements.map((s) => render(s, { name }))];
  return DEFAULT_REVOCATION.map((batch) => batch.map((s): Step => (s === NEUTRALISE_OWNED ? (client) => neutraliseOwned(client, name) : render(s, { name }))));
}
