// Pilot: the Nexus CLI. Talks to the mTLS port with a SPIFFE SVID.
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { Command } from 'commander';
// The wire shapes are the server's own types: one definition of each.
import type { Policy } from '../nexus/policy/types.js';
import { TENANT_CLAIM_PRESETS } from '../plugins/oidc/presets.js';
import type { IssuerConfig, RoleConfig } from '../plugins/oidc/types.js';

interface Conn {
  base: URL;
  agent: https.Agent;
}

class PilotError extends Error {}

function env(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
}

function readPem(file: string, what: string, envName: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch {
    throw new PilotError(`${what} not found at ${file} (set ${envName}, or start Nexus once to create the dev PKI)`);
  }
}

function connect(): Conn {
  const pki = path.resolve(env('NEXUS_DATA_DIR') ?? '.nexus', 'pki');
  const cert = env('NEXUS_CERT') ?? path.join(pki, 'pilot.crt');
  const key = env('NEXUS_KEY') ?? path.join(pki, 'pilot.key');
  const ca = env('NEXUS_CA') ?? path.join(pki, 'ca.crt');
  let base: URL;
  try {
    base = new URL(env('NEXUS_ADDR') ?? 'https://127.0.0.1:8553');
  } catch {
    throw new PilotError(`NEXUS_ADDR is not a URL: ${env('NEXUS_ADDR')}`);
  }
  if (base.protocol !== 'https:') throw new PilotError('NEXUS_ADDR must be an https:// URL');
  return {
    base,
    agent: new https.Agent({
      cert: readPem(cert, 'client certificate', 'NEXUS_CERT'),
      key: readPem(key, 'client key', 'NEXUS_KEY'),
      ca: readPem(ca, 'CA bundle', 'NEXUS_CA'),
      keepAlive: false,
    }),
  };
}

interface Reply {
  status: number;
  body: unknown;
}

function request(conn: Conn, method: string, urlPath: string, body?: unknown): Promise<Reply> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    // The path goes out exactly as written: a URL object would resolve `..`
    // and quietly ask for another secret than the one the user named.
    const req = https.request(
      {
        host: conn.base.hostname.replace(/^\[|\]$/g, ''),
        port: conn.base.port || 443,
        path: urlPath,
        method,
        agent: conn.agent,
        timeout: 15_000,
        headers: payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = null;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            parsed = text;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('timeout', () => req.destroy(new PilotError(`no answer from Nexus at ${conn.base.origin} within 15 s`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof PilotError) return reject(err);
      const where = conn.base.origin;
      if (err.code === 'ECONNREFUSED') reject(new PilotError(`cannot reach Nexus at ${where}: connection refused (is it running? set NEXUS_ADDR)`));
      else if (err.code === 'ENOTFOUND') reject(new PilotError(`cannot reach Nexus at ${where}: unknown host`));
      else if (err.code === 'ECONNRESET' || /alert|certificate|handshake|SSL/i.test(err.message)) {
        reject(new PilotError(`TLS handshake with ${where} failed: ${err.message} (check NEXUS_CERT, NEXUS_KEY, NEXUS_CA)`));
      } else reject(new PilotError(`request to ${where} failed: ${err.message}`));
    });
    req.end(payload);
  });
}

const LABEL: Record<number, string> = { 400: 'bad request', 401: 'not authenticated', 403: 'permission denied', 404: 'not found', 409: 'conflict', 413: 'too large', 429: 'rate limited', 503: 'unavailable' };

async function call(method: string, urlPath: string, body?: unknown): Promise<unknown> {
  const res = await request(connect(), method, urlPath, body);
  if (res.status >= 400) {
    const e = (res.body as { error?: { message?: string } } | null)?.error;
    const label = LABEL[res.status] ?? `HTTP ${res.status}`;
    throw new PilotError(e?.message && !e.message.startsWith(label) ? `${label}: ${e.message}` : (e?.message ?? label));
  }
  return res.body;
}

function enc(p: string): string {
  // Paths go into the URL as they are: the server refuses anything encoded.
  return p;
}

function globalJson(cmd: Command): boolean {
  return Boolean(cmd.optsWithGlobals().json === true);
}

function out(cmd: Command, value: unknown, human: () => string): void {
  process.stdout.write(globalJson(cmd) ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parsePairs(pairs: string[]): Record<string, string> {
  const data: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new PilotError(`expected key=value or key=@file, got ${JSON.stringify(pair)}`);
    const k = pair.slice(0, eq);
    const v = pair.slice(eq + 1);
    if (v.startsWith('@')) {
      try {
        data[k] = fs.readFileSync(v.slice(1), 'utf8');
      } catch {
        throw new PilotError(`cannot read ${v.slice(1)} for key ${k}`);
      }
    } else data[k] = v;
  }
  return data;
}

function versionsArg(list: string): number[] {
  const vs = list.split(',').map((s) => Number(s.trim()));
  if (vs.some((v) => !Number.isInteger(v) || v < 1)) throw new PilotError(`versions must be positive integers, got ${list}`);
  return vs;
}

const program = new Command('pilot')
  .description('Nexus CLI: talks to the mTLS port (NEXUS_ADDR) with a SPIFFE SVID (NEXUS_CERT, NEXUS_KEY, NEXUS_CA)')
  .option('--json', 'machine-readable JSON output')
  .showHelpAfterError();

const secret = program.command('secret').description('read and write secrets');

secret
  .command('put <path> [pairs...]')
  .description('write a new version: k=v or k=@file pairs, or `--json -` for a JSON object on stdin')
  .option('--cas <n>', 'check-and-set: the current version (0 = create only)')
  .action(async (p: string, pairs: string[], opts: { cas?: string }, cmd: Command) => {
    let data: unknown;
    // `--json -`: the global --json flag followed by "-" (stdin) as the only argument.
    if (pairs.length === 1 && pairs[0] === '-') {
      if (!globalJson(cmd)) throw new PilotError('"-" reads JSON from stdin only with --json: pilot secret put PATH --json -');
      try {
        data = JSON.parse(await readStdin());
      } catch {
        throw new PilotError('stdin is not valid JSON');
      }
    } else {
      if (!pairs.length) throw new PilotError('nothing to write: give k=v pairs or --json -');
      data = parsePairs(pairs);
    }
    const body: Record<string, unknown> = { data };
    if (opts.cas !== undefined) {
      if (!/^\d+$/.test(opts.cas)) throw new PilotError('--cas must be a non-negative integer');
      body.cas = Number(opts.cas);
    }
    const res = (await call('PUT', `/v1/secrets/${enc(p)}`, body)) as { path: string; version: number };
    out(cmd, res, () => `wrote ${res.path} version ${res.version}`);
  });

secret
  .command('get <path>')
  .option('--version <n>', 'a specific version')
  .option('--field <key>', 'print only this key, bare (for $(...))')
  .action(async (p: string, opts: { version?: string; field?: string }, cmd: Command) => {
    const q = opts.version ? `?version=${encodeURIComponent(opts.version)}` : '';
    const res = (await call('GET', `/v1/secrets/${enc(p)}${q}`)) as { path: string; version: number; data: Record<string, string>; created_at: string };
    if (opts.field !== undefined) {
      if (!Object.hasOwn(res.data, opts.field)) throw new PilotError(`secret ${res.path} has no field ${JSON.stringify(opts.field)}`);
      process.stdout.write(`${res.data[opts.field]}\n`);
      return;
    }
    out(cmd, res, () => {
      const keys = Object.keys(res.data);
      const w = Math.max(3, ...keys.map((k) => k.length));
      return [`${res.path} (version ${res.version}, created ${res.created_at})`, ...keys.map((k) => `  ${k.padEnd(w)}  ${res.data[k]}`)].join('\n');
    });
  });

secret
  .command('list [prefix]')
  .option('--limit <n>', 'page size')
  .action(async (prefix: string | undefined, opts: { limit?: string }, cmd: Command) => {
    const paths: string[] = [];
    let cursor: string | null = null;
    do {
      const q = new URLSearchParams();
      if (prefix) q.set('prefix', prefix);
      if (opts.limit) q.set('limit', opts.limit);
      if (cursor) q.set('cursor', cursor);
      const res = (await call('GET', `/v1/secrets?${q}`)) as { paths: string[]; next_cursor: string | null };
      paths.push(...res.paths);
      cursor = res.next_cursor;
    } while (cursor);
    out(cmd, { paths }, () => (paths.length ? paths.join('\n') : '(no secrets you may list)'));
  });

secret
  .command('delete <path>')
  .option('--version <n>', 'a specific version (default: latest)')
  .action(async (p: string, opts: { version?: string }, cmd: Command) => {
    const q = opts.version ? `?version=${encodeURIComponent(opts.version)}` : '';
    await call('DELETE', `/v1/secrets/${enc(p)}${q}`);
    out(cmd, { path: p, deleted: true }, () => `deleted ${p}${opts.version ? ` version ${opts.version}` : ' (latest version)'}`);
  });

for (const verb of ['undelete', 'destroy'] as const) {
  secret
    .command(`${verb} <path>`)
    .requiredOption('--versions <list>', 'comma-separated version numbers')
    .action(async (p: string, opts: { versions: string }, cmd: Command) => {
      const versions = versionsArg(opts.versions);
      await call('POST', `/v1/secrets/${enc(p)}:${verb}`, { versions });
      out(cmd, { path: p, [verb === 'undelete' ? 'undeleted' : 'destroyed']: versions }, () => `${verb === 'undelete' ? 'undeleted' : 'destroyed'} ${p} versions ${versions.join(', ')}`);
    });
}

secret.command('metadata <path>').action(async (p: string, _o: unknown, cmd: Command) => {
  const res = (await call('GET', `/v1/secrets/${enc(p)}:metadata`)) as {
    path: string;
    current_version: number;
    versions: Array<{ version: number; created_at: string; deleted_at: string | null; destroyed: boolean }>;
  };
  out(cmd, res, () =>
    [
      `${res.path} (current version ${res.current_version})`,
      ...res.versions.map((v) => `  v${v.version}  ${v.created_at}${v.destroyed ? '  destroyed' : v.deleted_at ? `  deleted ${v.deleted_at}` : ''}`),
    ].join('\n'),
  );
});

const policy = program.command('policy').description('SPIFFE policies (admin)');

function splitList(v: string, prev: string[] = []): string[] {
  return [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];
}

function showPolicy(p: Policy): string {
  return `${p.name}${p.builtin ? ' (built-in)' : ''}\n  spiffe_id    ${p.spiffe_id}\n  paths        ${p.paths.join(', ')}\n  permissions  ${p.permissions.join(', ')}`;
}

policy
  .command('put <name>')
  .requiredOption('--spiffe-id <glob>', 'SPIFFE ID glob (* within a segment, ** across)')
  .requiredOption('--path <glob>', 'path glob; repeat for more', (v: string, prev: string[]) => [...prev, v], [] as string[])
  .requiredOption('--perm <list>', 'read,list,write,delete,admin,metrics', splitList)
  .action(async (name: string, opts: { spiffeId: string; path: string[]; perm: string[] }, cmd: Command) => {
    const res = (await call('PUT', `/v1/policies/${encodeURIComponent(name)}`, { spiffe_id: opts.spiffeId, paths: opts.path, permissions: opts.perm })) as Policy;
    out(cmd, res, () => `saved policy ${showPolicy(res)}`);
  });

policy.command('get <name>').action(async (name: string, _o: unknown, cmd: Command) => {
  const res = (await call('GET', `/v1/policies/${encodeURIComponent(name)}`)) as Policy;
  out(cmd, res, () => showPolicy(res));
});

policy.command('list').action(async (_o: unknown, cmd: Command) => {
  const res = (await call('GET', '/v1/policies')) as { policies: Policy[] };
  out(cmd, res, () => res.policies.map(showPolicy).join('\n'));
});

policy.command('delete <name>').action(async (name: string, _o: unknown, cmd: Command) => {
  await call('DELETE', `/v1/policies/${encodeURIComponent(name)}`);
  out(cmd, { name, deleted: true }, () => `deleted policy ${name}`);
});

const oidc = program.command('oidc').description('OIDC issuers and roles for CI pipelines (admin)');
const issuer = oidc.command('issuer').description('trusted OIDC issuers');
const repeat = (v: string, prev: string[]) => [...prev, v];

function positive(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new PilotError(`${name} must be a positive integer`);
  return Number(v);
}

function showIssuer(i: IssuerConfig): string {
  return `${i.name}\n  issuer      ${i.issuer}\n  audiences   ${i.audiences.join(', ')}\n  algorithms  ${i.algorithms.join(', ')}${i.jwks_uri ? `\n  jwks_uri    ${i.jwks_uri}` : ''}${i.max_token_age_s ? `\n  max age     ${i.max_token_age_s} s` : ''}\n  lifetime    ≤ ${i.max_token_lifetime_s} s\n  tenants     ${i.tenant_claims.join(', ')}`;
}

issuer
  .command('put <name>')
  .requiredOption('--issuer <url>', 'the issuer URL, exactly as in the tokens\' iss')
  .requiredOption('--audience <aud>', 'accepted audience; repeat for more', repeat, [] as string[])
  .option('--alg <list>', 'allowed algorithms', splitList)
  .option('--jwks-uri <url>', 'skip discovery and use this JWKS')
  .option('--max-token-age <s>', 'refuse tokens older than this (needs iat)')
  .option('--max-token-lifetime <s>', 'refuse tokens whose exp - iat is longer (default 3600)')
  .option('--preset <platform>', 'tenant claims of a CI platform: github or gitlab')
  .option('--tenant-claim <name>', 'a claim naming the tenant, one of which every role must bind; repeat for more (default sub)', repeat, [] as string[])
  .action(async (name: string, o: { issuer: string; audience: string[]; alg?: string[]; jwksUri?: string; maxTokenAge?: string; maxTokenLifetime?: string; preset?: string; tenantClaim: string[] }, cmd: Command) => {
    if (o.preset !== undefined && !Object.hasOwn(TENANT_CLAIM_PRESETS, o.preset)) throw new PilotError(`--preset must be one of ${Object.keys(TENANT_CLAIM_PRESETS).join(', ')}`);
    const tenants = [...(o.preset ? TENANT_CLAIM_PRESETS[o.preset as keyof typeof TENANT_CLAIM_PRESETS] : []), ...o.tenantClaim];
    const body = {
      issuer: o.issuer,
      audiences: o.audience,
      algorithms: o.alg ?? ['RS256'],
      jwks_uri: o.jwksUri,
      max_token_age_s: positive('--max-token-age', o.maxTokenAge),
      max_token_lifetime_s: positive('--max-token-lifetime', o.maxTokenLifetime),
      ...(tenants.length ? { tenant_claims: tenants } : {}),
    };
    const res = (await call('PUT', `/v1/oidc/issuers/${encodeURIComponent(name)}`, body)) as IssuerConfig;
    out(cmd, res, () => `saved issuer ${showIssuer(res)}`);
  });
issuer.command('get <name>').action(async (name: string, _o: unknown, cmd: Command) => {
  const res = (await call('GET', `/v1/oidc/issuers/${encodeURIComponent(name)}`)) as IssuerConfig;
  out(cmd, res, () => showIssuer(res));
});
issuer.command('list').action(async (_o: unknown, cmd: Command) => {
  const res = (await call('GET', '/v1/oidc/issuers')) as { issuers: IssuerConfig[] };
  out(cmd, res, () => (res.issuers.length ? res.issuers.map(showIssuer).join('\n') : '(no issuers)'));
});
issuer.command('delete <name>').action(async (name: string, _o: unknown, cmd: Command) => {
  await call('DELETE', `/v1/oidc/issuers/${encodeURIComponent(name)}`);
  out(cmd, { name, deleted: true }, () => `deleted issuer ${name}`);
});

const role = oidc.command('role').description('claims -> grants bindings');

function showRole(r: RoleConfig): string {
  const claims = Object.entries(r.bound_claims).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  const globs = Object.entries(r.bound_claims_glob).map(([k, v]) => `${k}~${v}`);
  return `${r.name} (issuer ${r.issuer})\n  claims       ${[...claims, ...globs].join(', ')}\n  paths        ${r.paths.join(', ')}\n  permissions  ${r.permissions.join(', ')}${r.token_ttl_s ? `\n  token ttl    ${r.token_ttl_s} s` : ''}`;
}

function claimPairs(pairs: string[], flag: string): Array<[string, string]> {
  return pairs.map((p) => {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new PilotError(`${flag} expects claim=value, got ${JSON.stringify(p)}`);
    return [p.slice(0, eq), p.slice(eq + 1)];
  });
}

role
  .command('put <name>')
  .requiredOption('--issuer <name>', 'a configured issuer')
  .option('--claim <k=v>', 'exact string match; repeat a claim for "any of"', repeat, [] as string[])
  .option('--claim-glob <k=pattern>', 'glob on a string claim (* within a segment, ** across)', repeat, [] as string[])
  .requiredOption('--path <template>', 'path glob, may use {{claims.NAME}}; repeat for more', repeat, [] as string[])
  .requiredOption('--perm <list>', 'read,list[,write]', splitList)
  .option('--ttl <s>', 'exchanged token lifetime (default 900, at most 3600)')
  .action(async (name: string, o: { issuer: string; claim: string[]; claimGlob: string[]; path: string[]; perm: string[]; ttl?: string }, cmd: Command) => {
    const bound: Record<string, string | string[]> = {};
    for (const [k, v] of claimPairs(o.claim, '--claim')) {
      const prev = bound[k];
      bound[k] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v];
    }
    const body = {
      issuer: o.issuer,
      bound_claims: bound,
      bound_claims_glob: Object.fromEntries(claimPairs(o.claimGlob, '--claim-glob')),
      paths: o.path,
      permissions: o.perm,
      token_ttl_s: positive('--ttl', o.ttl),
    };
    const res = (await call('PUT', `/v1/oidc/roles/${encodeURIComponent(name)}`, body)) as RoleConfig;
    out(cmd, res, () => `saved role ${showRole(res)}`);
  });
role.command('get <name>').action(async (name: string, _o: unknown, cmd: Command) => {
  const res = (await call('GET', `/v1/oidc/roles/${encodeURIComponent(name)}`)) as RoleConfig;
  out(cmd, res, () => showRole(res));
});
role.command('list').action(async (_o: unknown, cmd: Command) => {
  const res = (await call('GET', '/v1/oidc/roles')) as { roles: RoleConfig[] };
  out(cmd, res, () => (res.roles.length ? res.roles.map(showRole).join('\n') : '(no roles)'));
});
role.command('delete <name>').action(async (name: string, _o: unknown, cmd: Command) => {
  await call('DELETE', `/v1/oidc/roles/${encodeURIComponent(name)}`);
  out(cmd, { name, deleted: true }, () => `deleted role ${name} (and revoked its exchanged tokens)`);
});
role.command('revoke-tokens <name>').action(async (name: string, _o: unknown, cmd: Command) => {
  const res = (await call('POST', `/v1/oidc/roles/${encodeURIComponent(name)}:revoke-tokens`)) as { revoked: number };
  out(cmd, res, () => `revoked ${res.revoked} exchanged token(s) of role ${name}`);
});

program.exitOverride();
try {
  await program.parseAsync();
} catch (err) {
  if (err instanceof PilotError) {
    process.stderr.write(`pilot: ${err.message}\n`);
    process.exitCode = 1;
  } else if ((err as { code?: string }).code?.startsWith('commander.')) {
    const code = (err as { exitCode?: number }).exitCode ?? 1;
    process.exitCode = code === 0 ? 0 : 2;
  } else {
    process.stderr.write(`pilot: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
