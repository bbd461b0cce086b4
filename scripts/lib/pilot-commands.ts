// Pilot's commands: a commander tree built by a function, so that tests and
// the completion generator can walk it without running anything.
import { Argument, Command, Option } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
// The wire shapes are the server's own types: one definition of each.
import type { Policy } from '../../nexus/policy/types.js';
import { isValidSegment } from '../../nexus/secrets/rules.js';
import { githubRoleBindings, TENANT_CLAIM_PRESETS } from '../../plugins/oidc/presets.js';
import type { RoleTestResult } from '../../plugins/oidc/role-test-schema.js';
import type { IssuerConfig, RoleConfig } from '../../plugins/oidc/types.js';
import type { DbConnection, DbCreds, DbRole, LeaseInfo } from '../../nexus/dbcreds/schema.js';
import { completionScript, SHELLS, type Shell } from './completion.js';
import { operatorCommands } from './pilot-operator.js';
import { connect, PilotError, request, UsageError, env, type Conn } from './pilot-conn.js';
import { addSignalsCommand } from './pilot-signals.js';

const LABEL: Record<number, string> = { 400: 'bad request', 401: 'not authenticated', 403: 'permission denied', 404: 'not found', 409: 'conflict', 413: 'too large', 429: 'rate limited', 503: 'unavailable' };

interface GlobalOpts {
  json?: boolean;
  spiffeSocket?: string;
}

function globals(cmd: Command): GlobalOpts {
  return cmd.optsWithGlobals() as GlobalOpts;
}

async function connectFor(cmd: Command): Promise<Conn> {
  return connect(globals(cmd).spiffeSocket);
}

async function call(cmd: Command, method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const res = await request(await connectFor(cmd), method, urlPath, body);
  if (res.status >= 400) {
    const e = (res.body as { error?: { message?: string } } | null)?.error;
    const label = LABEL[res.status] ?? `HTTP ${res.status}`;
    throw new PilotError(e?.message && !e.message.startsWith(label) ? `${label}: ${e.message}` : (e?.message ?? label));
  }
  return res;
}

async function get<T>(cmd: Command, method: string, urlPath: string, body?: unknown): Promise<T> {
  return (await call(cmd, method, urlPath, body)).body as T;
}

/** --json, or NEXUS_FORMAT=json (NEXUS_FORMAT=text or unset: text). */
function wantsJson(cmd: Command): boolean {
  if (globals(cmd).json) return true;
  const f = env('NEXUS_FORMAT');
  if (f === undefined || f === 'text') return false;
  if (f === 'json') return true;
  throw new UsageError(`NEXUS_FORMAT must be json or text, got ${JSON.stringify(f)}`);
}

function out(cmd: Command, value: unknown, human: () => string): void {
  process.stdout.write(wantsJson(cmd) ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
}

/** `get`, `list` and `delete` of one kind of admin object: policies, issuers and roles share the route shape. */
function adminObjectCommands<T>(
  group: Command,
  kind: { noun: string; route: string; listKey: string; show: (o: T) => string; listHelp: string; deleteHelp: string; none?: string; deleted?: string },
): void {
  const one = (name: string) => `${kind.route}/${encodeURIComponent(name)}`;
  group.command('get <name>').description(`show one ${kind.noun}`).action(async (name: string, _o: unknown, cmd: Command) => {
    const res = (await get(cmd, 'GET', one(name))) as T;
    out(cmd, res, () => kind.show(res));
  });
  group.command('list').description(kind.listHelp).action(async (_o: unknown, cmd: Command) => {
    const res = (await get(cmd, 'GET', kind.route)) as Record<string, T[]>;
    const items = res[kind.listKey]!;
    out(cmd, res, () => (items.length === 0 && kind.none !== undefined ? kind.none : items.map(kind.show).join('\n')));
  });
  group.command('delete <name>').description(kind.deleteHelp).action(async (name: string, _o: unknown, cmd: Command) => {
    await call(cmd, 'DELETE', one(name));
    out(cmd, { name, deleted: true }, () => `deleted ${kind.noun} ${name}${kind.deleted ?? ''}`);
  });
}

/** A bare value for $(...): no trailing newline unless a person is looking at it. */
function bare(value: unknown): void {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  process.stdout.write(process.stdout.isTTY ? `${text}\n` : text);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * A lone "-" reads the data as JSON from stdin, as `vault kv put PATH -`
 * does. `--json` only shapes the output, so `--json -` still reads stdin.
 */
async function stdinJson(pairs: string[]): Promise<unknown | undefined> {
  if (!(pairs.length === 1 && pairs[0] === '-')) return undefined;
  try {
    return JSON.parse(await readStdin());
  } catch {
    throw new PilotError('stdin is not valid JSON');
  }
}

function parsePairs(pairs: string[]): Record<string, string> {
  const data: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`expected key=value or key=@file, got ${JSON.stringify(pair)}`);
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

function count(flag: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,15}$/.test(v) || Number(v) < min) throw new UsageError(`${flag} must be an integer of at least ${min}, got ${JSON.stringify(v)}`);
  return Number(v);
}

/**
 * The folder a list argument names: `app` and `app/` both mean `app/`, never
 * `application/` (segment-aware, as vault kv list). Each segment must be a valid one.
 */
function listFolder(prefix: string | undefined): string {
  const trimmed = (prefix ?? '').replace(/\/$/, '');
  if (trimmed === '') return '';
  const segments = trimmed.split('/');
  if (segments.some((s) => !isValidSegment(s))) throw new UsageError(`not a folder path: ${JSON.stringify(prefix)} (segments of A-Z a-z 0-9 . _ -, not "." or "..", no "//")`);
  return `${trimmed}/`;
}

/** A path under `folder`, cut to its first level: a leaf as it is, a deeper path as its folder with a trailing "/". */
function oneLevel(folder: string, path: string): string {
  const slash = path.indexOf('/', folder.length);
  return slash === -1 ? path : path.slice(0, slash + 1);
}

function versionsArg(list: string): number[] {
  const vs = list.split(',').map((s) => s.trim());
  if (vs.some((v) => !/^\d{1,15}$/.test(v) || Number(v) < 1)) throw new UsageError(`--versions must be comma-separated positive integers, got ${JSON.stringify(list)}`);
  return vs.map(Number);
}

function splitList(v: string, prev: string[] = []): string[] {
  return [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];
}

const repeat = (v: string, prev: string[]) => [...prev, v];

interface VersionsOutcome {
  path: string;
  done: number[];
  skipped: Array<{ version: number; reason: string }>;
}

/** 204: every version named was changed; 200: the server says which were left alone and why. */
function versionsResult(p: string, requested: number[] | null, res: { status: number; body: unknown }): VersionsOutcome {
  if (res.status === 200 && res.body && typeof res.body === 'object') return res.body as VersionsOutcome;
  return { path: p, done: requested ?? [], skipped: [] };
}

function showOutcome(verb: string, o: VersionsOutcome, latest: boolean): string {
  const done = o.done.length ? `${verb} ${o.path} ${latest ? 'latest version' : `version${o.done.length > 1 ? 's' : ''} ${o.done.join(', ')}`}` : `${verb} nothing in ${o.path}`;
  const left = o.skipped.map((s) => `${s.version} (${s.reason.replace(/_/g, ' ')})`).join(', ');
  return left ? `${done}; left alone: ${left}` : done;
}

function showPolicy(p: Policy): string {
  return `${p.name}${p.builtin ? ' (built-in)' : ''}\n  spiffe_id    ${p.spiffe_id}\n  paths        ${p.paths.join(', ')}\n  permissions  ${p.permissions.join(', ')}`;
}

function positive(name: string, v: string | undefined): number | undefined {
  return count(name, v, 1);
}

function showConnection(c: DbConnection): string {
  return `${c.name}  ${c.url} as ${c.username}  roles: ${c.allowed_roles.join(', ') || '(none)'}`;
}

function showDbRole(r: DbRole): string {
  return `${r.name}  on ${r.connection}  ttl ${r.default_ttl_s}s (max ${r.max_ttl_s}s)  user ${r.username_template}`;
}

function showLease(l: LeaseInfo): string {
  return `${l.lease_id}  ${l.username}  ${l.state}  until ${l.expires_at}  for ${l.caller}`;
}

/** A write-only value from a file or stdin ("-"), never from the command line (shell history, ps). */
function readSecretArg(flag: string, file: string): string {
  try {
    const text = fs.readFileSync(file === '-' ? 0 : file, 'utf8').replace(/\r?\n$/, '');
    if (!text) throw new UsageError(`${flag}: ${file === '-' ? 'stdin' : file} is empty`);
    return text;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new PilotError(`${flag}: cannot read ${file === '-' ? 'stdin' : file}`);
  }
}

function showIssuer(i: IssuerConfig): string {
  return `${i.name}\n  issuer      ${i.issuer}\n  audiences   ${i.audiences.join(', ')}\n  algorithms  ${i.algorithms.join(', ')}${i.jwks_uri ? `\n  jwks_uri    ${i.jwks_uri}` : ''}${i.max_token_age_s ? `\n  max age     ${i.max_token_age_s} s` : ''}\n  lifetime    ≤ ${i.max_token_lifetime_s} s\n  tenants     ${i.tenant_claims.join(', ')}${showRateLimit(i.rate_limit)}`;
}

function showRateLimit(r: IssuerConfig['rate_limit'] | undefined): string {
  if (!r) return '';
  const parts = [r.per_tenant_rps === undefined ? null : `${r.per_tenant_rps}/s per tenant`, r.per_ip_failed_rps === undefined ? null : `${r.per_ip_failed_rps} failures/s per IP`];
  return `\n  rate limit  ${parts.filter((p) => p !== null).join(', ')}`;
}

/** A rate in requests/s: a positive number, fractions allowed (0.5: one every 2 s). */
function rate(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,7}(\.\d{1,6})?$/.test(v) || !(Number(v) > 0)) throw new UsageError(`${flag} must be a positive number (requests/s), got ${JSON.stringify(v)}`);
  return Number(v);
}

/** An issuer's own rates; neither flag: none (the global settings). */
function rateLimitOptions(o: { perTenantRps?: string; perIpFailedRps?: string }): Record<string, unknown> {
  const perTenant = rate('--per-tenant-rps', o.perTenantRps);
  const perIp = rate('--per-ip-failed-rps', o.perIpFailedRps);
  if (perTenant === undefined && perIp === undefined) return {};
  return { rate_limit: { ...(perTenant === undefined ? {} : { per_tenant_rps: perTenant }), ...(perIp === undefined ? {} : { per_ip_failed_rps: perIp }) } };
}

function showRole(r: RoleConfig): string {
  const claims = Object.entries(r.bound_claims).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  const globs = Object.entries(r.bound_claims_glob).map(([k, v]) => `${k}~${v}`);
  return `${r.name} (issuer ${r.issuer})\n  claims       ${[...claims, ...globs].join(', ')}\n  paths        ${r.paths.join(', ')}\n  permissions  ${r.permissions.join(', ')}${r.token_ttl_s ? `\n  token ttl    ${r.token_ttl_s} s` : ''}`;
}

/** `--preset github --repo O/R [--repo-id N --owner-id M]`: id bindings when given ids, else the name and a warning. */
function presetBindings(o: { preset?: string; repo?: string; repoId?: string; ownerId?: string }): Record<string, string | string[]> {
  if (o.preset === undefined) {
    if (o.repo !== undefined || o.repoId !== undefined || o.ownerId !== undefined) throw new UsageError('--repo, --repo-id and --owner-id need --preset github');
    return {};
  }
  if (o.preset !== 'github') throw new UsageError('--preset must be github');
  if (o.repo === undefined) throw new UsageError('--preset github needs --repo OWNER/REPO');
  let r: ReturnType<typeof githubRoleBindings>;
  try {
    r = githubRoleBindings({ repo: o.repo, repoId: o.repoId, ownerId: o.ownerId });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
  return { ...r.bound_claims };
}

/** An issuer's key-set flags: a server-side file, or a local file stored inline. */
function keySetOptions(o: { jwksFile?: string; jwks?: string; jwksStale?: string }): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (o.jwksFile !== undefined) {
    if (!path.isAbsolute(o.jwksFile)) throw new UsageError('--jwks-file must be an absolute path (on the server)');
    out.jwks_file = o.jwksFile;
  }
  if (o.jwks !== undefined) {
    try {
      out.jwks = JSON.parse(fs.readFileSync(o.jwks, 'utf8'));
    } catch (err) {
      throw new UsageError(`--jwks ${o.jwks}: ${(err as NodeJS.ErrnoException).code ?? 'not JSON'}`);
    }
  }
  const stale = positive('--jwks-stale', o.jwksStale);
  if (stale !== undefined) out.jwks_stale_s = stale;
  return out;
}

async function roleTestInput(o: { jwtFile?: string; claims?: string; issuer?: string }): Promise<Record<string, unknown>> {
  if ((o.jwtFile === undefined) === (o.claims === undefined)) throw new UsageError('give --jwt-file FILE, or --claims JSON with --issuer NAME');
  if (o.jwtFile !== undefined) {
    if (o.issuer !== undefined) throw new UsageError('--issuer goes with --claims (a JWT names its issuer)');
    let jwt: string;
    try {
      jwt = o.jwtFile === '-' ? await readStdin() : fs.readFileSync(o.jwtFile, 'utf8');
    } catch (err) {
      throw new UsageError(`--jwt-file ${o.jwtFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return { jwt: jwt.trim() };
  }
  if (o.issuer === undefined) throw new UsageError('--claims needs --issuer NAME');
  let claims: unknown;
  try {
    claims = JSON.parse(o.claims!);
  } catch {
    throw new UsageError('--claims must be a JSON object');
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) throw new UsageError('--claims must be a JSON object');
  return { issuer: o.issuer, claims };
}

/** Rows padded to columns (the last one free). */
function table(rows: string[][], indent = '  '): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => indent + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

function showRoleTest(r: RoleTestResult): string {
  const out: string[] = [`issuer ${r.issuer ?? '(none: iss names no configured issuer)'}`];
  if (r.token) {
    out.push(`token: ${r.token.accepted ? 'accepted' : `refused (${r.token.reason})`}`);
    out.push(table([['check', 'verdict', 'detail'], ...r.token.checks.map((c) => [c.check, c.ok ? 'ok' : 'FAIL', c.detail])]));
  }
  if (r.roles.length === 0) out.push('no role of this issuer to test');
  for (const v of r.roles) {
    out.push(`role ${v.role}: ${v.matched ? 'match' : 'no match'}${v.why ? ` (${v.why})` : ''}`);
    const shown = (x: unknown) => (typeof x === 'string' ? x : JSON.stringify(x));
    const rows = v.bindings.map((b) => [b.claim, `${b.match === 'glob' ? '~' : ''}${shown(b.expected)}`, b.actual === undefined ? '(absent)' : JSON.stringify(b.actual), b.ok ? 'ok' : 'FAIL']);
    out.push(table([['claim', 'expected', 'actual', 'verdict'], ...rows]));
    for (const g of v.grants) out.push(`  grants  ${g.path}  ${g.permissions.join(',')}`);
    for (const w of v.warnings) out.push(`  warning: ${w}`);
  }
  return out.join('\n');
}

function claimPairs(pairs: string[], flag: string): Array<[string, string]> {
  return pairs.map((p) => {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new UsageError(`${flag} expects claim=value, got ${JSON.stringify(p)}`);
    return [p.slice(0, eq), p.slice(eq + 1)];
  });
}

/** Every command in the tree, the program first. */
export function allCommands(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(allCommands)];
}

function commandPath(c: Command): string {
  return c.parent ? `${commandPath(c.parent)} ${c.name()}` : c.name();
}

/** One line on stderr for every usage error, whatever commander would print. */
function oneLine(text: string): string {
  return text.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').trim();
}

const GROUPS = ['secret', 'policy', 'oidc', 'operator', 'db', 'lease'];

/**
 * The command group `args` invoke (the first word that is not an option), if
 * it is one of GROUPS: Pilot then builds only that group's subcommands, which
 * is most of its start-up work. Anything else (help, completion) builds all.
 */
export function invokedGroup(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--spiffe-socket') i += 1;
    else if (!a.startsWith('-')) return GROUPS.includes(a) ? a : undefined;
  }
  return undefined;
}

export function buildProgram(version: string, args: string[] = []): Command {
  const only = invokedGroup(args);
  const builds = (group: string) => only === undefined || only === group;
  const program = new Command('pilot')
    .description('Nexus CLI: talks to the mTLS port (NEXUS_ADDR) with a SPIFFE SVID (NEXUS_CERT/NEXUS_KEY/NEXUS_CA, or SPIFFE_ENDPOINT_SOCKET)')
    .version(version, '--version', 'print the version of Pilot')
    // Program options before the subcommand; each command takes --json and --spiffe-socket itself (see below).
    .enablePositionalOptions()
    .option('--json', 'machine-readable JSON output (default with NEXUS_FORMAT=json)')
    .option('--spiffe-socket <path>', 'take the SVID from this SPIFFE Workload API socket (default SPIFFE_ENDPOINT_SOCKET)');

  const secret = program.command('secret').description('read and write secrets');

  if (builds('secret')) {
    secret
      .command('put <path> [pairs...]')
      .description('write a new version: k=v or k=@file pairs, or - for a JSON object on stdin')
      .option('--cas <n>', 'check-and-set: the current version (0 = create only)')
      .action(async (p: string, pairs: string[], opts: { cas?: string }, cmd: Command) => {
        let data = await stdinJson(pairs);
        if (data === undefined) {
          if (!pairs.length) throw new UsageError('nothing to write: give k=v pairs or - (JSON on stdin)');
          data = parsePairs(pairs);
        }
        // No version comes back to a caller who may not read the path.
        const res = await get<{ path: string; version?: number }>(cmd, 'PUT', `/v1/secrets/${p}`, { data, cas: count('--cas', opts.cas, 0) });
        out(cmd, res, () => `wrote ${res.path}${res.version === undefined ? '' : ` version ${res.version}`}`);
      });

    secret
      .command('patch <path> [pairs...]')
      .description('merge k=v pairs into the latest version as a new version; --remove K drops a key; - takes {"k":"v","gone":null} on stdin')
      .option('--remove <key>', 'remove this key; repeat for more', repeat, [] as string[])
      .option('--cas <n>', 'check-and-set: the current version')
      .action(async (p: string, pairs: string[], opts: { remove: string[]; cas?: string }, cmd: Command) => {
        let data = (await stdinJson(pairs)) as Record<string, string | null> | undefined;
        if (data === undefined) {
          if (!pairs.length && !opts.remove.length) throw new UsageError('nothing to change: give k=v pairs, --remove KEY or - (JSON on stdin)');
          data = parsePairs(pairs);
        }
        for (const k of opts.remove) data[k] = null;
        const res = await get<{ path: string; version: number }>(cmd, 'PATCH', `/v1/secrets/${p}`, { data, cas: count('--cas', opts.cas, 0) });
        out(cmd, res, () => `patched ${res.path}: version ${res.version}`);
      });

    secret
      .command('rollback <path>')
      .description("write an earlier version's data again as the new latest version")
      .requiredOption('--version <n>', 'the version to bring back (must be readable)')
      .option('--cas <n>', 'check-and-set: the current version')
      .action(async (p: string, opts: { version: string; cas?: string }, cmd: Command) => {
        const version = count('--version', opts.version, 1);
        const res = await get<{ path: string; version: number }>(cmd, 'POST', `/v1/secrets/${p}:rollback`, { version, cas: count('--cas', opts.cas, 0) });
        out(cmd, { ...res, from_version: version }, () => `rolled ${res.path} back to version ${version}: now version ${res.version}`);
      });

    secret
      .command('get <path>')
      .description('read the latest version, or --version N')
      .option('--version <n>', 'a specific version')
      .option('--field <key>', 'print only this key, bare (no newline when piped), for $(...)')
      .action(async (p: string, opts: { version?: string; field?: string }, cmd: Command) => {
        const v = count('--version', opts.version, 1);
        const res = await get<{ path: string; version: number; data: Record<string, string>; created_at: string }>(cmd, 'GET', `/v1/secrets/${p}${v ? `?version=${v}` : ''}`);
        if (opts.field !== undefined) {
          if (!Object.hasOwn(res.data, opts.field)) throw new PilotError(`secret ${res.path} has no field ${JSON.stringify(opts.field)}`);
          bare(res.data[opts.field]);
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
      .description('list one level under PREFIX/ (folders end in "/"), as vault kv list does; -r lists every path below')
      .option('-r, --recursive', 'every path below PREFIX/, not one level')
      .option('--limit <n>', 'at most this many entries')
      .action(async (prefix: string | undefined, opts: { limit?: string; recursive?: boolean }, cmd: Command) => {
        const limit = count('--limit', opts.limit, 1);
        const folder = listFolder(prefix);
        const entries = new Set<string>();
        let cursor: string | null = null;
        do {
          const q = new URLSearchParams();
          if (folder) q.set('prefix', folder);
          if (limit !== undefined) q.set('limit', String(Math.min(Math.max(limit - entries.size, 1), 1000)));
          if (cursor) q.set('cursor', cursor);
          const res: { paths: string[]; next_cursor: string | null } = await get(cmd, 'GET', `/v1/secrets?${q}`);
          for (const p of res.paths) {
            if (limit !== undefined && entries.size >= limit) break;
            entries.add(opts.recursive ? p : oneLevel(folder, p));
          }
          cursor = res.next_cursor;
        } while (cursor && (limit === undefined || entries.size < limit));
        const paths = [...entries];
        out(cmd, { paths, next_cursor: cursor }, () => (paths.length ? paths.join('\n') : '(no secrets you may list)'));
      });

    secret
      .command('delete <path>')
      .description('soft delete the latest version, --version N or --versions 1,2 (undelete brings them back)')
      .option('--version <n>', 'one version')
      .option('--versions <list>', 'comma-separated versions')
      .action(async (p: string, opts: { version?: string; versions?: string }, cmd: Command) => {
        if (opts.version !== undefined && opts.versions !== undefined) throw new UsageError('give --version or --versions, not both');
        const versions = opts.versions !== undefined ? versionsArg(opts.versions) : opts.version !== undefined ? [count('--version', opts.version, 1)!] : null;
        const res = await call(cmd, 'DELETE', `/v1/secrets/${p}${versions ? `?versions=${versions.join(',')}` : ''}`);
        const o = versionsResult(p, versions, res);
        out(cmd, o, () => showOutcome('deleted', o, versions === null));
      });

    for (const [verb, past, what] of [
      ['undelete', 'undeleted', 'bring soft-deleted versions back'],
      ['destroy', 'destroyed', 'erase the ciphertext of versions for good'],
    ] as const) {
      secret
        .command(`${verb} <path>`)
        .description(what)
        .requiredOption('--versions <list>', 'comma-separated version numbers')
        .action(async (p: string, opts: { versions: string }, cmd: Command) => {
          const versions = versionsArg(opts.versions);
          const o = versionsResult(p, versions, await call(cmd, 'POST', `/v1/secrets/${p}:${verb}`, { versions }));
          out(cmd, o, () => showOutcome(past, o, false));
        });
    }

    secret
      .command('purge <path>')
      .description('remove the path with every version and its bytes (permission delete); it is no longer listed')
      .action(async (p: string, _o: unknown, cmd: Command) => {
        await call(cmd, 'DELETE', `/v1/secrets/${p}:metadata`);
        out(cmd, { path: p, purged: true }, () => `purged ${p}: every version removed`);
      });

    secret
      .command('metadata <path>')
      .description('versions with their dates and flags, no values')
      .option('--field <key>', 'print only this field (e.g. current_version), bare')
      .action(async (p: string, opts: { field?: string }, cmd: Command) => {
        const res = await get<{ path: string; current_version: number; versions: Array<{ version: number; created_at: string; deleted_at: string | null; destroyed: boolean }> }>(cmd, 'GET', `/v1/secrets/${p}:metadata`);
        if (opts.field !== undefined) {
          if (!Object.hasOwn(res, opts.field)) throw new PilotError(`metadata of ${res.path} has no field ${JSON.stringify(opts.field)} (fields: ${Object.keys(res).join(', ')})`);
          bare((res as unknown as Record<string, unknown>)[opts.field]);
          return;
        }
        out(cmd, res, () =>
          [
            `${res.path} (current version ${res.current_version})`,
            ...res.versions.map((v) => `  v${v.version}  ${v.created_at}${v.destroyed ? '  destroyed' : v.deleted_at ? `  deleted ${v.deleted_at}` : ''}`),
          ].join('\n'),
        );
      });
  }

  program
    .command('whoami')
    .description('your SPIFFE ID and where it came from, and the Nexus you reach (authorized by its SPIFFE ID)')
    .action(async (_o: unknown, cmd: Command) => {
      const conn = await connectFor(cmd);
      // Any valid SVID may ask for /healthz: this proves the handshake and the server's ID both ways.
      const res = await request(conn, 'GET', '/healthz');
      if (res.status >= 400) throw new PilotError(`the server at ${conn.base.origin} answered HTTP ${res.status}`);
      const who = { spiffe_id: conn.client.spiffeId, source: conn.client.source, expires_at: conn.client.notAfter.toISOString(), server: { addr: conn.base.origin, spiffe_id: conn.serverId } };
      out(cmd, who, () => `${who.spiffe_id}\n  from     ${who.source}\n  expires  ${who.expires_at}\n  server   ${who.server.spiffe_id} at ${who.server.addr}`);
    });

  const policy = program.command('policy').description('SPIFFE policies (admin)');

  if (builds('policy')) {
    policy
      .command('put <name>')
      .description('create or replace a policy: which SPIFFE IDs get which permissions on which paths')
      .requiredOption('--spiffe-id <glob>', 'SPIFFE ID glob (* within a segment, ** across)')
      .requiredOption('--path <glob>', 'path glob; repeat for more', (v: string, prev: string[]) => [...prev, v], [] as string[])
      .requiredOption('--perm <list>', 'read,list,write,delete,admin,metrics', splitList)
      .action(async (name: string, opts: { spiffeId: string; path: string[]; perm: string[] }, cmd: Command) => {
        const res = (await get(cmd, 'PUT', `/v1/policies/${encodeURIComponent(name)}`, { spiffe_id: opts.spiffeId, paths: opts.path, permissions: opts.perm })) as Policy;
        out(cmd, res, () => `saved policy ${showPolicy(res)}`);
      });

    adminObjectCommands<Policy>(policy, {
      noun: 'policy',
      route: '/v1/policies',
      listKey: 'policies',
      show: showPolicy,
      listHelp: 'list every policy, the built-in one too',
      deleteHelp: 'delete a policy (never the built-in one)',
    });
  }

  const oidc = program.command('oidc').description('OIDC issuers and roles for CI pipelines (admin)');

  if (builds('oidc')) {
    const issuer = oidc.command('issuer').description('trusted OIDC issuers');

    issuer
      .command('put <name>')
      .description('trust an OIDC issuer (its tokens, its audiences, its algorithms)')
      .requiredOption('--issuer <url>', 'the issuer URL, exactly as in the tokens\' iss')
      .requiredOption('--audience <aud>', 'accepted audience; repeat for more', repeat, [] as string[])
      .option('--alg <list>', 'allowed algorithms', splitList)
      .option('--jwks-uri <url>', 'skip discovery and use this JWKS')
      .option('--max-token-age <s>', 'refuse tokens older than this (needs iat)')
      .option('--max-token-lifetime <s>', 'refuse tokens whose exp - iat is longer (default 3600)')
      .option('--preset <platform>', 'tenant claims of a CI platform: github or gitlab')
      .option('--tenant-claim <name>', 'a claim naming the tenant, one of which every role must bind; repeat for more (default sub)', repeat, [] as string[])
      .option('--jwks-file <path>', 'a JWK Set file on the server, re-read when it changes (an IdP Nexus cannot reach: GHES, self-managed GitLab)')
      .option('--jwks <file>', 'a local JWK Set file whose keys are stored with the issuer (inline)')
      .option('--jwks-stale <s>', 'how long keys fetched from the IdP keep verifying while it does not answer (default 86400)')
      .option('--per-tenant-rps <n>', 'this issuer\'s requests/s per tenant (repository, project), burst 5x (default: the server\'s NEXUS_OIDC_SUBJECT_RPS)')
      .option('--per-ip-failed-rps <n>', 'this issuer\'s failed authentications/s per client IP, burst 5x (default: the server\'s NEXUS_OIDC_FAILED_AUTH_RPS)')
      .option('--no-verify', 'save without fetching discovery and the JWKS first (an IdP reachable only later)')
      .action(async (name: string, o: { issuer: string; audience: string[]; alg?: string[]; jwksUri?: string; jwksFile?: string; jwks?: string; jwksStale?: string; perTenantRps?: string; perIpFailedRps?: string; maxTokenAge?: string; maxTokenLifetime?: string; preset?: string; tenantClaim: string[]; verify: boolean }, cmd: Command) => {
        if (o.preset !== undefined && !Object.hasOwn(TENANT_CLAIM_PRESETS, o.preset)) throw new UsageError(`--preset must be one of ${Object.keys(TENANT_CLAIM_PRESETS).join(', ')}`);
        const tenants = [...(o.preset ? TENANT_CLAIM_PRESETS[o.preset as keyof typeof TENANT_CLAIM_PRESETS] : []), ...o.tenantClaim];
        const body = {
          issuer: o.issuer,
          audiences: o.audience,
          algorithms: o.alg ?? ['RS256'],
          jwks_uri: o.jwksUri,
          max_token_age_s: positive('--max-token-age', o.maxTokenAge),
          max_token_lifetime_s: positive('--max-token-lifetime', o.maxTokenLifetime),
          ...(tenants.length ? { tenant_claims: tenants } : {}),
          ...keySetOptions(o),
          ...rateLimitOptions(o),
          ...(o.verify ? {} : { verify: false }),
        };
        const res = (await get(cmd, 'PUT', `/v1/oidc/issuers/${encodeURIComponent(name)}`, body)) as IssuerConfig;
        out(cmd, res, () => `saved issuer ${showIssuer(res)}`);
      });
    adminObjectCommands<IssuerConfig>(issuer, {
      noun: 'issuer',
      route: '/v1/oidc/issuers',
      listKey: 'issuers',
      show: showIssuer,
      listHelp: 'list the trusted issuers',
      deleteHelp: 'stop trusting an issuer (refused while a role uses it)',
      none: '(no issuers)',
    });

    const role = oidc.command('role').description('claims -> grants bindings');

    role
      .command('put <name>')
      .description('bind token claims to paths and permissions')
      .requiredOption('--issuer <name>', 'a configured issuer')
      .option('--claim <k=v>', 'exact string match; repeat a claim for "any of"', repeat, [] as string[])
      .option('--claim-glob <k=pattern>', 'glob on a string claim (* within a segment, ** across)', repeat, [] as string[])
      .requiredOption('--path <template>', 'path glob, may use {{claims.NAME}}; repeat for more', repeat, [] as string[])
      .requiredOption('--perm <list>', 'read,list[,write]', splitList)
      .option('--ttl <s>', 'exchanged token lifetime (default 900, at most 3600)')
      .option('--preset <platform>', 'bindings of a CI platform for --repo: github')
      .option('--repo <owner/repo>', 'with --preset github: the repository')
      .option('--repo-id <n>', 'with --repo: its immutable id (gh api repos/OWNER/REPO --jq .id); binds the id, not the name')
      .option('--owner-id <n>', 'with --repo-id: the owner\'s immutable id (--jq .owner.id)')
      .action(async (name: string, o: { issuer: string; claim: string[]; claimGlob: string[]; path: string[]; perm: string[]; ttl?: string; preset?: string; repo?: string; repoId?: string; ownerId?: string }, cmd: Command) => {
        const bound: Record<string, string | string[]> = presetBindings(o);
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
        const res = (await get(cmd, 'PUT', `/v1/oidc/roles/${encodeURIComponent(name)}`, body)) as RoleConfig & { warnings?: string[] };
        for (const w of res.warnings ?? []) process.stderr.write(`warning: ${w}\n`);
        out(cmd, res, () => `saved role ${showRole(res)}`);
      });
    role
      .command('test [role]')
      .description('dry run: what the OIDC port decides for a sample token (every check) or for claims, role by role, and why')
      .option('--jwt-file <file>', 'a sample JWT from the CI platform (- reads stdin)')
      .option('--claims <json>', 'a token\'s claims as JSON, tested without a signature (needs --issuer)')
      .option('--issuer <name>', 'with --claims: the issuer whose roles to test')
      .action(async (only: string | undefined, o: { jwtFile?: string; claims?: string; issuer?: string }, cmd: Command) => {
        const body = { ...(await roleTestInput(o)), ...(only === undefined ? {} : { role: only }) };
        const res = await get<RoleTestResult>(cmd, 'POST', '/v1/oidc/roles:test', body);
        out(cmd, res, () => showRoleTest(res));
      });
    adminObjectCommands<RoleConfig>(role, {
      noun: 'role',
      route: '/v1/oidc/roles',
      listKey: 'roles',
      show: showRole,
      listHelp: 'list the roles',
      deleteHelp: 'delete a role and revoke its exchanged tokens',
      none: '(no roles)',
      deleted: ' (and revoked its exchanged tokens)',
    });
    role.command('revoke-tokens <name>').description('revoke every exchanged token of a role').action(async (name: string, _o: unknown, cmd: Command) => {
      const res = (await get(cmd, 'POST', `/v1/oidc/roles/${encodeURIComponent(name)}:revoke-tokens`)) as { revoked: number };
      out(cmd, res, () => `revoked ${res.revoked} exchanged token(s) of role ${name}`);
    });

    const token = oidc.command('token').description('exchanged tokens (admin)');
    token
      .command('revoke')
      .description('revoke every exchanged token of an issuer, or of one of its roles (the day an IdP key leaks)')
      .requiredOption('--issuer <name>', 'the issuer whose tokens end')
      .option('--role <name>', 'only the tokens that carry this role')
      .action(async (opts: { issuer: string; role?: string }, cmd: Command) => {
        const res = (await get(cmd, 'POST', `/v1/oidc/issuers/${encodeURIComponent(opts.issuer)}:revoke-tokens`, opts.role ? { role: opts.role } : {})) as { revoked: number };
        out(cmd, res, () => `revoked ${res.revoked} exchanged token(s) of issuer ${opts.issuer}${opts.role ? `, role ${opts.role}` : ''}`);
      });
  }

  const db = program.command('db').description('database credentials: connections and credential roles (admin), credentials for a role');

  if (builds('db')) {
    const connection = db.command('connection').description('PostgreSQL servers Nexus creates users on');
    connection
      .command('put <name>')
      .description('save a connection (Nexus connects once to check it)')
      .requiredOption('--url <url>', 'postgres://host:port/database (no credentials in it)')
      .requiredOption('--username <role>', 'the admin role Nexus connects as (needs CREATEROLE)')
      .requiredOption('--password-file <file>', 'its password, read from this file ("-": stdin); write-only, never shown again')
      .option('--allowed-role <name>', 'a credential role that may use it ("*": any); repeat for more', repeat, [] as string[])
      .action(async (name: string, o: { url: string; username: string; passwordFile: string; allowedRole: string[] }, cmd: Command) => {
        const body = { url: o.url, username: o.username, password: readSecretArg('--password-file', o.passwordFile), allowed_roles: o.allowedRole };
        const res = await get<DbConnection>(cmd, 'PUT', `/v1/db/connections/${encodeURIComponent(name)}`, body);
        out(cmd, res, () => `saved connection ${showConnection(res)}`);
      });
    adminObjectCommands<DbConnection>(connection, {
      noun: 'connection',
      route: '/v1/db/connections',
      listKey: 'connections',
      show: showConnection,
      listHelp: 'list the connections (never their passwords)',
      deleteHelp: 'delete a connection (refused while leases on it are live)',
      none: '(no connections)',
    });

    const role = db.command('role').description('how a user is created and dropped, and for how long');
    role
      .command('put <name>')
      .description('save a credential role: placeholders {{name}}, {{password}}, {{expiration}} are quoted by Nexus')
      .requiredOption('--connection <name>', 'a saved connection that allows this role')
      .requiredOption('--creation-statement <sql>', 'e.g. "CREATE ROLE {{name}} LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}"; repeat for more', repeat, [] as string[])
      .option('--revocation-statement <sql>', 'default: end its sessions, REASSIGN OWNED, DROP OWNED, DROP ROLE; repeat for more', repeat, [] as string[])
      .option('--default-ttl <s>', 'lease length when none is asked for (default 900)')
      .option('--max-ttl <s>', 'longest lease, renewals included (default 3600)')
      .option('--username-template <t>', 'A-Z a-z 0-9 _ - and {{role}}, {{caller}}, {{run}}, {{random}}, {{unix_time}}')
      .action(async (name: string, o: { connection: string; creationStatement: string[]; revocationStatement: string[]; defaultTtl?: string; maxTtl?: string; usernameTemplate?: string }, cmd: Command) => {
        const body = {
          connection: o.connection,
          creation_statements: o.creationStatement,
          ...(o.revocationStatement.length ? { revocation_statements: o.revocationStatement } : {}),
          default_ttl_s: positive('--default-ttl', o.defaultTtl),
          max_ttl_s: positive('--max-ttl', o.maxTtl),
          username_template: o.usernameTemplate,
        };
        const res = await get<DbRole>(cmd, 'PUT', `/v1/db/roles/${encodeURIComponent(name)}`, body);
        out(cmd, res, () => `saved role ${showDbRole(res)}`);
      });
    adminObjectCommands<DbRole>(role, {
      noun: 'role',
      route: '/v1/db/roles',
      listKey: 'roles',
      show: showDbRole,
      listHelp: 'list the credential roles',
      deleteHelp: 'delete a credential role (its live leases still end at their time)',
      none: '(no roles)',
    });

    db.command('creds <role>')
      .description('a new database user for a role (permission read on db/creds/ROLE), as vault read database/creds/ROLE')
      .option('--ttl <s>', 'lease length (at most the role\'s max_ttl_s)')
      .action(async (name: string, o: { ttl?: string }, cmd: Command) => {
        const ttl = positive('--ttl', o.ttl);
        const res = await get<DbCreds>(cmd, 'GET', `/v1/db/creds/${encodeURIComponent(name)}${ttl ? `?ttl=${ttl}` : ''}`);
        out(cmd, res, () => `username  ${res.username}\npassword  ${res.password}\nlease_id  ${res.lease_id}\nduration  ${res.lease_duration}s`);
      });
  }

  const lease = program.command('lease').description('leases of database credentials');

  if (builds('lease')) {
    lease
      .command('list')
      .description('live leases under a prefix (admin; never passwords)')
      .option('--prefix <p>', 'db/creds/ or db/creds/ROLE', 'db/creds/')
      .action(async (o: { prefix: string }, cmd: Command) => {
        const res = await get<{ leases: LeaseInfo[] }>(cmd, 'GET', `/v1/leases?prefix=${encodeURIComponent(o.prefix)}`);
        out(cmd, res, () => (res.leases.length ? res.leases.map(showLease).join('\n') : '(no leases)'));
      });
    lease
      .command('renew <lease_id>')
      .description('extend a lease (never past its role\'s max_ttl_s)')
      .option('--increment <s>', 'seconds from now')
      .action(async (id: string, o: { increment?: string }, cmd: Command) => {
        const res = await get<{ lease_id: string; lease_duration: number }>(cmd, 'PUT', '/v1/leases/renew', { lease_id: id, increment: positive('--increment', o.increment) });
        out(cmd, res, () => `renewed ${res.lease_id}: ${res.lease_duration}s left`);
      });
    lease
      .command('revoke <lease_id>')
      .description('revoke one lease now: its user is dropped and its sessions ended')
      .action(async (id: string, _o: unknown, cmd: Command) => {
        await call(cmd, 'PUT', '/v1/leases/revoke', { lease_id: id });
        out(cmd, { lease_id: id, revoked: true }, () => `revoked ${id}`);
      });
    lease
      .command('revoke-prefix <prefix>')
      .description('revoke every lease under db/creds/ or db/creds/ROLE (admin)')
      .action(async (prefix: string, _o: unknown, cmd: Command) => {
        const res = await get<{ revoked: number; failed: number }>(cmd, 'PUT', '/v1/leases/revoke-prefix', { prefix });
        out(cmd, res, () => `revoked ${res.revoked} lease(s) under ${prefix}${res.failed ? `; ${res.failed} failed and will be retried` : ''}`);
      });
  }

  operatorCommands(program, { get, out }, builds('operator'));

  addSignalsCommand(program, { get, out });

  program
    .command('completion')
    .description('print a shell completion script: source <(pilot completion bash)')
    .addArgument(new Argument('<shell>', 'bash, zsh or fish').choices(SHELLS))
    .action((shell: Shell) => {
      process.stdout.write(completionScript(program, shell));
    });

  // NEXUS_FORMAT is checked before any command runs, so a bad value is a usage error even when the request would fail.
  program.hook('preAction', (_p, action) => void wantsJson(action));

  for (const c of allCommands(program)) {
    // Every command, at every level: usage errors exit 2 (mapped in pilot.ts), one line on stderr.
    c.exitOverride();
    const subs = c.commands.map((x) => x.name()).filter((n) => n !== 'help');
    c.configureOutput({
      outputError: (str, write) => write(`pilot: ${oneLine(str)}\n`),
      // A command group run without its subcommand: commander would print the whole help to stderr.
      writeErr: (str) => process.stderr.write(str.startsWith('Usage:') ? `pilot: ${commandPath(c)} needs a command: ${subs.join(', ')} (see ${commandPath(c)} --help)\n` : str),
    });
    if (c !== program && c.commands.length === 0 && c.name() !== 'completion') {
      c.addOption(new Option('--json', 'machine-readable JSON output (default with NEXUS_FORMAT=json)'));
      c.addOption(new Option('--spiffe-socket <path>', 'take the SVID from this SPIFFE Workload API socket (default SPIFFE_ENDPOINT_SOCKET)'));
    }
  }
  return program;
}
