import { createHash } from 'node:crypto';
import { HttpError, nexusClient, type NexusClient, type TlsSetup } from './client.js';
import type { RetryPolicy } from './retry.js';
import { dbCredNames, MAX_TREE, prefixedName, writerMayName, type DbCredSpec, type SecretSpec } from './spec.js';

/** One value to hand to the job: the variable name and where it came from. */
export interface Resolved {
  name: string;
  value: string;
  path: string;
  key: string;
}

/** A database credential's lease: what a log or a step output may show of it (never the user or password). */
export interface Lease {
  role: string;
  lease_id: string;
  lease_duration: number;
}

export class FetchError extends Error {}

/**
 * Names a job's token in logs and step outputs without being it: the first
 * 16 hex digits of its SHA-256, which is the key of its row in Nexus's store
 * (the native exchange answers no id of its own; the audit trail's token_id
 * is an HMAC only the server can compute).
 */
export function tokenId(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 16);
}

export interface FetchRequest {
  url: string;
  tls: TlsSetup;
  /** The job's JWT (OIDC port); absent, the X509-SVID in `tls` is the credential (mTLS port). */
  jwt?: string;
  role?: string;
  specs: SecretSpec[];
  /** Database credentials to mint (leases of the exchanged token: they end with it). */
  dbCreds?: DbCredSpec[];
  /** Keep the exchanged token live after the read (exec gives it back when its child ends); by default it is revoked at once, and always after a failure. */
  keepToken?: boolean;
  /** How requests are retried (429, 503, connection failures, clock skew); default 3 tries, 30 s. */
  retry?: RetryPolicy;
  /**
   * The caller's client, kept open after the fetch (the caller closes it):
   * exec gives the token back on the connection that read the secrets
   * rather than on a new TCP and TLS handshake. Default: one of its own.
   */
  client?: NexusClient;
}

/** What giving a token back came to: `gone` is a token already revoked or expired (401), which is no failure. */
export type GiveBack = { outcome: 'revoked' } | { outcome: 'gone' } | { outcome: 'failed'; warning: string };

/** Gives a job's token back (the server ends its leases with it); a failure is only a warning (the token still ends at its TTL). */
export function revokeWith(client: NexusClient, token: string): Promise<GiveBack> {
  return client.revoke(token).then(
    (): GiveBack => ({ outcome: 'revoked' }),
    (err: Error): GiveBack =>
      err instanceof HttpError && err.status === 401 ? { outcome: 'gone' } : { outcome: 'failed', warning: `could not revoke the job's token ${tokenId(token)} (it and its leases end at its TTL): ${err.message}` },
  );
}

/** revokeWith on a connection of its own (the post step, `nexus-ci revoke`: another process read the secrets). */
export async function giveBack(url: string, tls: TlsSetup, token: string, retry?: RetryPolicy): Promise<GiveBack> {
  const client = nexusClient(url, tls, retry);
  try {
    return await revokeWith(client, token);
  } finally {
    client.close();
  }
}

/**
 * What both front ends (the action, nexus-ci) do: exchange the job's JWT
 * once (with an SVID there is nothing to exchange), read each secret path
 * once, and resolve every spec line to values. A missing key is an error
 * naming the line, never an empty or "null" value.
 */
export interface Fetched {
  values: Resolved[];
  leases: Lease[];
  /** The exchanged token, when kept (keepToken); undefined once given back, or with an SVID. */
  token: string | undefined;
  /** tokenId of the exchanged token, kept or not. */
  tokenId?: string;
  /** The token was given back after the read. */
  revoked?: boolean;
  warning?: string;
}

export async function fetchSecrets(req: FetchRequest): Promise<Fetched> {
  const client = req.client ?? nexusClient(req.url, req.tls, req.retry);
  let token: string | undefined;
  let ok = false;
  try {
    const exchanged = req.jwt === undefined ? undefined : await client.exchange(req.jwt, req.role).catch((err: Error) => {
      // A status means Nexus answered and said no; otherwise it was never reached.
      throw new FetchError(err instanceof HttpError && err.status > 0 ? `Nexus refused the job's token: ${err.message}` : `token exchange failed: ${err.message}`);
    });
    token = exchanged?.token;
    const paths = [...new Set(req.specs.filter((s) => s.kind !== 'tree').map((s) => s.path))];
    const data = new Map<string, Record<string, string>>();
    for (const path of paths) {
      try {
        data.set(path, await client.read(path, token));
      } catch (err) {
        const lines = req.specs.filter((s) => s.path === path).map((s) => s.line);
        throw new FetchError(`secret ${path} (${lines.map((l) => `"${l}"`).join(', ')}): ${(err as Error).message}`);
      }
    }
    const values: Resolved[] = [];
    const leases: Lease[] = [];
    for (const spec of req.specs) {
      const d = data.get(spec.path) ?? {};
      if (spec.kind === 'key') {
        if (!Object.hasOwn(d, spec.key)) throw new FetchError(`secret ${spec.path} ("${spec.line}"): it has no key ${JSON.stringify(spec.key)}`);
        values.push({ name: spec.name, value: d[spec.key]!, path: spec.path, key: spec.key });
      } else {
        const all = spec.kind === 'tree' ? await treeValues(client, spec, token) : Object.keys(d).sort().map((key) => ({ name: prefixedName(spec.prefix, key), value: d[key]!, path: spec.path, key }));
        // Refused before anything is exported, in every output: see writerMayName.
        const hooks = all.filter((v) => !writerMayName(v.name));
        if (hooks.length) {
          const names = hooks.map((v) => v.name).join(', ');
          if (spec.kind === 'tree') {
            throw new FetchError(`"${spec.line}": secrets under ${spec.path}/ (${[...new Set(hooks.map((v) => v.path))].join(', ')}) would set ${names}, which a secret's content may not choose (loader, shell and runner variables); use a prefix such as APP_`);
          }
          throw new FetchError(`secret ${spec.path} ("${spec.line}"): its keys would set ${names}, which a secret's content may not choose (loader, shell and runner variables); name them in the job with "${spec.path} KEY | NAME" lines, or use a prefix such as APP_`);
        }
        values.push(...all);
      }
    }
    // After the reads: a refused read then mints no database user at all.
    for (const spec of req.dbCreds ?? []) {
      const creds = await client.dbCreds(spec.role, token).catch((err: Error) => {
        throw new FetchError(`db-creds "${spec.line}": ${err.message}`);
      });
      const names = dbCredNames(spec);
      const path = `db/creds/${spec.role}`;
      values.push({ name: names.username, value: creds.username, path, key: 'username' }, { name: names.password, value: creds.password, path, key: 'password' });
      leases.push({ role: spec.role, lease_id: creds.lease_id, lease_duration: creds.lease_duration });
    }
    const seen = new Map<string, string>();
    for (const v of values) {
      const before = seen.get(v.name);
      if (before !== undefined && before !== `${v.path} ${v.key}`) throw new FetchError(`${v.name} is set twice (from ${before} and ${v.path} ${v.key})`);
      seen.set(v.name, `${v.path} ${v.key}`);
    }
    ok = true;
    const id = token === undefined ? {} : { tokenId: tokenId(token) };
    if (!token || req.keepToken) return { values, leases, token, ...id };
    const g = await revokeWith(client, token);
    return { values, leases, token: undefined, ...id, revoked: g.outcome !== 'failed', ...(g.outcome === 'failed' ? { warning: g.warning } : {}) };
  } finally {
    // A failed read gives the token back too (and with it any lease minted before): nothing will use them.
    if (!ok && token) await revokeWith(client, token);
    if (!req.client) client.close();
  }
}

type TreeSpec = Extract<SecretSpec, { kind: 'tree' }>;

/**
 * The values of a `PATH/** | PREFIX_` (or `PATH/*`) line: every secret the
 * job may read under PATH/, each key named PREFIX_<RELATIVE_PATH>_<KEY>. With
 * a token, one request per page of up to 100 secrets with their data; with an
 * SVID (the mTLS port has no list with data), the paths listed, then each
 * read, a path it may list but not read passed over. More than MAX_TREE
 * secrets, or none, is refused naming the line.
 */
async function treeValues(client: NexusClient, spec: TreeSpec, token: string | undefined): Promise<Resolved[]> {
  const prefix = `${spec.path}/`;
  const wanted = (path: string) => spec.depth === 'all' || !path.slice(prefix.length).includes('/');
  const tooMany = () => new FetchError(`"${spec.line}": more than ${MAX_TREE} secrets under ${prefix} (the most one line may fetch): name narrower subtrees, one line each`);
  const found: Array<{ path: string; data: Record<string, string> }> = [];
  let cursor: string | null = null;
  try {
    if (token !== undefined) {
      do {
        const page = await client.listData(prefix, token, cursor);
        found.push(...page.secrets.filter((s) => wanted(s.path)));
        if (found.length > MAX_TREE) throw tooMany();
        cursor = page.next_cursor;
      } while (cursor);
    } else {
      const paths: string[] = [];
      do {
        const page = await client.list(prefix, cursor);
        paths.push(...page.paths.filter(wanted));
        if (paths.length > MAX_TREE) throw tooMany();
        cursor = page.next_cursor;
      } while (cursor);
      for (const path of paths) {
        const data = await client.read(path).catch((err: Error) => {
          if (err instanceof HttpError && (err.status === 403 || err.status === 404)) return undefined;
          throw err;
        });
        if (data) found.push({ path, data });
      }
    }
  } catch (err) {
    if (err instanceof FetchError) throw err;
    throw new FetchError(`"${spec.line}": ${(err as Error).message}`);
  }
  if (found.length === 0) throw new FetchError(`"${spec.line}": no secret the job may read under ${prefix}`);
  return found.flatMap(({ path, data }) => {
    const rel = path.slice(prefix.length);
    return Object.keys(data).sort().map((key) => ({ name: prefixedName(spec.prefix, `${rel}_${key}`), value: data[key]!, path, key }));
  });
}

/** Every string a log must never show: each value, and each line of a multi-line one. */
export function maskable(values: string[]): string[] {
  const out = new Set<string>();
  for (const v of values) {
    if (v) out.add(v);
    if (/[\r\n]/.test(v)) for (const line of v.split(/\r?\n/)) if (line.trim()) out.add(line);
  }
  return [...out];
}
