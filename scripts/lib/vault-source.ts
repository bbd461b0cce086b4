// The Vault side of nexus-import: just enough of Vault's KV v2 HTTP API
// (LIST metadata, metadata, data?version=N) to walk a mount and read it.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { PilotError, UsageError } from './pilot-conn.js';

/** One version as Vault's metadata describes it. */
export interface VaultVersion {
  version: number;
  deleted: boolean;
  destroyed: boolean;
}

export interface VaultSecretMeta {
  currentVersion: number;
  /** Ascending by version. */
  versions: VaultVersion[];
}

export interface VaultSource {
  /** Every secret path under `path` ('' for the whole mount), depth first, sorted. */
  walk(path: string): Promise<string[]>;
  metadata(path: string): Promise<VaultSecretMeta | null>;
  /** The value of one version; null when Vault has none to give (deleted, destroyed, gone). */
  read(path: string, version: number): Promise<Record<string, unknown> | null>;
}

interface Answer {
  status: number;
  body: { errors?: unknown; data?: unknown } | null;
}

/** Vault's path segments may hold characters a URL may not: each is encoded on its own. */
const encodePath = (p: string) => p.split('/').map(encodeURIComponent).join('/');

export function vaultSource(opts: { addr: string; token: string; mount: string; ca?: string }): VaultSource {
  let base: URL;
  try {
    base = new URL(opts.addr);
  } catch {
    throw new UsageError(`--addr is not a URL: ${opts.addr}`);
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:') throw new UsageError('--addr must be an http:// or https:// URL');
  const agent = base.protocol === 'https:' ? new https.Agent({ keepAlive: true, ...(opts.ca ? { ca: opts.ca } : {}) }) : new http.Agent({ keepAlive: true });
  const where = base.origin;

  const get = (urlPath: string): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const mod = base.protocol === 'https:' ? https : http;
      const req = mod.request(
        { host: base.hostname.replace(/^\[|\]$/g, ''), port: base.port || (base.protocol === 'https:' ? 443 : 80), path: `${base.pathname.replace(/\/$/, '')}${urlPath}`, method: 'GET', agent, timeout: 30_000, headers: { 'X-Vault-Token': opts.token, 'X-Vault-Request': 'true' } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            let body: Answer['body'] = null;
            try {
              body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Answer['body'];
            } catch {
              body = null;
            }
            resolve({ status: res.statusCode ?? 0, body });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
      req.on('error', (err) => reject(new PilotError(`cannot reach Vault at ${where}: ${err.message}`)));
      req.end();
    });

  /** A 2xx, or null for Vault's 404; anything else is the run's end, said in one line. */
  const ask = async (urlPath: string): Promise<Answer['body'] | null> => {
    const a = await get(urlPath);
    if (a.status >= 200 && a.status < 300) return a.body;
    if (a.status === 404) return null;
    const errors = Array.isArray(a.body?.errors) ? (a.body.errors as unknown[]).map(String).join('; ') : '';
    const said = errors ? `: ${errors}` : '';
    if (a.status === 401 || a.status === 403) throw new PilotError(`Vault at ${where} refused the token (${a.status}${said}); check --token-file and that its policy may list and read ${opts.mount}/`);
    throw new PilotError(`Vault at ${where} answered ${a.status} to GET ${urlPath.split('?')[0]}${said}`);
  };

  const api = (kind: 'metadata' | 'data', path: string) => `/v1/${opts.mount}/${kind}${path ? `/${encodePath(path)}` : ''}`;

  const list = async (dir: string): Promise<string[]> => {
    const body = await ask(`${api('metadata', dir)}?list=true`);
    const keys = (body?.data as { keys?: unknown } | undefined)?.keys;
    return Array.isArray(keys) ? keys.map(String) : [];
  };

  const metadata = async (path: string): Promise<VaultSecretMeta | null> => {
    const body = await ask(api('metadata', path));
    const data = body?.data as { current_version?: number; versions?: Record<string, { deletion_time?: string; destroyed?: boolean }> } | undefined;
    if (!data) return null;
    const versions = Object.entries(data.versions ?? {})
      .map(([v, info]) => ({ version: Number(v), deleted: Boolean(info.deletion_time), destroyed: info.destroyed === true }))
      .sort((a, b) => a.version - b.version);
    return { currentVersion: data.current_version ?? 0, versions };
  };

  return {
    async walk(path) {
      const out: string[] = [];
      const visit = async (dir: string): Promise<void> => {
        for (const key of (await list(dir)).sort()) {
          const full = dir ? `${dir}/${key}` : key;
          if (key.endsWith('/')) await visit(full.slice(0, -1));
          else out.push(full);
        }
      };
      const start = path.replace(/^\/+|\/+$/g, '');
      await visit(start);
      // --path may name one secret rather than a folder.
      if (out.length === 0 && start && (await metadata(start))) out.push(start);
      return out;
    },
    metadata,
    async read(path, version) {
      const body = await ask(`${api('data', path)}?version=${version}`);
      const data = (body?.data as { data?: unknown } | undefined)?.data;
      return data && typeof data === 'object' ? (data as Record<string, unknown>) : null;
    },
  };
}

/** The token from --token-file, as Vault's CLI keeps it (~/.vault-token): one line. */
export function readToken(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new UsageError(`cannot read --token-file ${file}`);
  }
  const token = text.trim();
  if (!token || /\s/.test(token)) throw new UsageError(`--token-file ${file} must hold one token on one line`);
  return token;
}
