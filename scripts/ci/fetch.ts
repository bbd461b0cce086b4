import { HttpError, nexusClient, type NexusClient, type TlsSetup } from './client.js';
import { prefixedName, writerMayName, type SecretSpec } from './spec.js';

/** One value to hand to the job: the variable name and where it came from. */
export interface Resolved {
  name: string;
  value: string;
  path: string;
  key: string;
}

export class FetchError extends Error {}

export interface FetchRequest {
  url: string;
  tls: TlsSetup;
  /** The job's JWT (OIDC port); absent, the X509-SVID in `tls` is the credential (mTLS port). */
  jwt?: string;
  role?: string;
  specs: SecretSpec[];
  /** Keep the exchanged token live after the read (exec gives it back when its child ends); by default it is revoked at once, and always after a failure. */
  keepToken?: boolean;
}

/** Gives a job's token back; a failure is only a warning, returned (the token still ends at its TTL). */
function revokeWith(client: NexusClient, token: string): Promise<string | undefined> {
  return client.revoke(token).then(
    () => undefined,
    (err: Error) => `could not revoke the job's token (it ends at its TTL): ${err.message}`,
  );
}

/** revokeWith on a connection of its own (exec: the read's connection is closed by the time the command ends). */
export async function revokeQuietly(url: string, tls: TlsSetup, token: string): Promise<string | undefined> {
  const client = nexusClient(url, tls);
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
export async function fetchSecrets(req: FetchRequest): Promise<{ values: Resolved[]; token: string | undefined; warning?: string }> {
  const client = nexusClient(req.url, req.tls);
  let token: string | undefined;
  let ok = false;
  try {
    const exchanged = req.jwt === undefined ? undefined : await client.exchange(req.jwt, req.role).catch((err: Error) => {
      // A status means Nexus answered and said no; otherwise it was never reached.
      throw new FetchError(err instanceof HttpError && err.status > 0 ? `Nexus refused the job's token: ${err.message}` : `token exchange failed: ${err.message}`);
    });
    token = exchanged?.token;
    const paths = [...new Set(req.specs.map((s) => s.path))];
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
    for (const spec of req.specs) {
      const d = data.get(spec.path)!;
      if (spec.kind === 'key') {
        if (!Object.hasOwn(d, spec.key)) throw new FetchError(`secret ${spec.path} ("${spec.line}"): it has no key ${JSON.stringify(spec.key)}`);
        values.push({ name: spec.name, value: d[spec.key]!, path: spec.path, key: spec.key });
      } else {
        const all = Object.keys(d).sort().map((key) => ({ name: prefixedName(spec.prefix, key), value: d[key]!, path: spec.path, key }));
        // Refused before anything is exported, in every output: see writerMayName.
        const hooks = all.map((v) => v.name).filter((n) => !writerMayName(n));
        if (hooks.length) {
          throw new FetchError(`secret ${spec.path} ("${spec.line}"): its keys would set ${hooks.join(', ')}, which a secret's content may not choose (loader, shell and runner variables); name them in the job with "${spec.path} KEY | NAME" lines, or use a prefix such as APP_`);
        }
        values.push(...all);
      }
    }
    const seen = new Map<string, string>();
    for (const v of values) {
      const before = seen.get(v.name);
      if (before !== undefined && before !== `${v.path} ${v.key}`) throw new FetchError(`${v.name} is set twice (from ${before} and ${v.path} ${v.key})`);
      seen.set(v.name, `${v.path} ${v.key}`);
    }
    ok = true;
    if (!token || req.keepToken) return { values, token };
    const warning = await revokeWith(client, token);
    return { values, token: undefined, ...(warning ? { warning } : {}) };
  } finally {
    // A failed read gives the token back too: nothing will use it.
    if (!ok && token) await revokeWith(client, token);
    client.close();
  }
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
