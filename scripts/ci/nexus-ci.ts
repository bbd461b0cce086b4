// nexus-ci: the GitHub Action's logic for any CI (GitLab, Jenkins, Buildkite,
// CircleCI), with the job's JWT on the OIDC port, or, on a SPIRE-managed
// runner, with its X509-SVID on the mTLS port. Bundled with the action by
// `npm run build:ci`, so a job needs no TypeScript tool chain.
import * as core from '@actions/core';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { socketTarget } from '../../nexus/spiffe/endpoint.js';
import { ServerIdConfigError } from '../../nexus/spiffe/server-id.js';
import { nexusClient, readCa, type TlsSetup } from './client.js';
import { Relay } from './exec.js';
import { fetchSecrets, maskable, revokeWith, type Fetched } from './fetch.js';
import { DEFAULT_RETRY } from './retry.js';
import { FORMATS, render, type Format } from './formats.js';
import { caTrust } from './server-trust.js';
import { spiffeTls } from './spiffe.js';
import { parseDbCreds, parseSpecs, SpecError } from './spec.js';
import { revokeTokenFile } from './token-file.js';
import { trace } from './trace.js';

trace('modules loaded');

const USAGE = `usage: nexus-ci (--jwt-env NAME | --jwt-file FILE | --spiffe-socket SOCKET) --url URL [--ca FILE] [--role NAME]
                [--secret 'PATH KEY | ENV_NAME' | --secret 'PATH | PREFIX_' ...] [--db-creds 'ROLE | PREFIX_' ...]
                ( exec -- CMD [ARGS...] | --format dotenv|json|shell --out FILE | --github-env )
                [--no-revoke | --token-out FILE] [--print-ids] [--max-tries N] [--max-retry-s S]
       nexus-ci revoke --token-file FILE --url URL [--ca FILE]
  --url defaults to $NEXUS_URL, --ca to $NEXUS_CA (PEM file; omit for a publicly trusted certificate);
    a --ca that is a SPIFFE bundle (or a server certificate with a SPIFFE ID) means the server must
    present $NEXUS_SERVER_SPIFFE_ID (default spiffe://<trust domain>/nexus): its host name is not enough
  the exchanged token is revoked after the read (exec: when CMD ends, however it ends; SIGINT, SIGTERM
    and SIGHUP go to CMD, which is waited for); --no-revoke keeps it to its TTL; --token-out FILE
    keeps it in FILE (mode 0600) for a later 'nexus-ci revoke --token-file FILE' (GitLab after_script)
  --db-creds 'ROLE | PREFIX_': a fresh database user of the credential role, as PREFIX_USERNAME and
    PREFIX_PASSWORD; a lease of the token, ending with it (so --format and --github-env need
    --token-out or --no-revoke); --print-ids shows the token id and lease ids on stderr, never values
  'PATH | PREFIX_' (PREFIX_ may be empty) refuses keys that would become loader, shell or runner
    variables (BASH_ENV, LD_*, NODE_OPTIONS, PATH, GIT_*, ...): name those with 'PATH KEY | NAME'
  'PATH/** | PREFIX_' (or 'PATH/*', one level): every secret the job may read under PATH/, each key
    as PREFIX_<RELATIVE_PATH>_<KEY> (upper case, other characters as _); at most 500 secrets a line,
    two that make one name are refused naming both paths
  a 429, a 503 or a failed connection is tried again (capped exponential back-off with jitter, the
    server's Retry-After honoured), at most --max-tries (default 3) tries and --max-retry-s (default
    30) seconds of waiting per request; a token the server's clock says is not yet valid, once
  --spiffe-socket defaults to $SPIFFE_ENDPOINT_SOCKET (SPIFFE Workload API, unix:///path):
    without a JWT, the job's X509-SVID is the credential, --url is Nexus's mTLS port and
    SPIFFE policies decide (no --role); with a JWT and no --ca, the socket's bundle is the CA.
    Either way the server must present $NEXUS_SERVER_SPIFFE_ID (default spiffe://<trust domain>/nexus)`;

class UsageError extends Error {}

interface Plan {
  /** The job's JWT for the OIDC port; undefined: the X509-SVID from `socket` on the mTLS port. */
  jwt: string | undefined;
  /** The Workload API socket, when it is used (for the SVID, or as the CA of a JWT run without --ca). */
  socket: string | undefined;
  url: string;
  ca: string | undefined;
  role: string | undefined;
  secrets: string[];
  dbCreds: string[];
  /** Give the exchanged token back: after the read, or (exec) when the child ends. */
  revoke: boolean;
  /** Keep the token in this file for `nexus-ci revoke` rather than give it back now. */
  tokenOut: string | undefined;
  printIds: boolean;
  retry: { maxTries: number; maxWaitS: number };
  mode: { kind: 'exec'; command: string[] } | { kind: 'file'; format: Format; out: string } | { kind: 'github-env' };
}

/** `nexus-ci revoke --token-file FILE`: only the server's address and trust. */
interface RevokePlan {
  tokenFile: string;
  url: string;
  ca: string | undefined;
  socket: string | undefined;
}

function plan(argv: string[], env: NodeJS.ProcessEnv): Plan | RevokePlan {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      tokens: true,
      options: {
        'jwt-env': { type: 'string' },
        'jwt-file': { type: 'string' },
        'spiffe-socket': { type: 'string' },
        url: { type: 'string' },
        ca: { type: 'string' },
        role: { type: 'string' },
        secret: { type: 'string', multiple: true },
        'db-creds': { type: 'string', multiple: true },
        'token-out': { type: 'string' },
        'token-file': { type: 'string' },
        'print-ids': { type: 'boolean' },
        format: { type: 'string' },
        out: { type: 'string' },
        'github-env': { type: 'boolean' },
        'no-revoke': { type: 'boolean' },
        'max-tries': { type: 'string' },
        'max-retry-s': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]!);
  }
  const { values: o, tokens } = parsed;
  if (o.help) throw new UsageError('');
  const term = tokens.find((t) => t.kind === 'option-terminator')?.index ?? Infinity;
  const before = tokens.filter((t) => t.kind === 'positional' && t.index < term).map((t) => (t as { value: string }).value);
  const after = tokens.filter((t) => t.kind === 'positional' && t.index > term).map((t) => (t as { value: string }).value);
  // An empty value counts as unset: `--spiffe-socket ''` ignores a $SPIFFE_ENDPOINT_SOCKET the runner sets.
  const socket = (o['spiffe-socket'] ?? env.SPIFFE_ENDPOINT_SOCKET) || undefined;
  const url = o.url ?? env.NEXUS_URL;
  const ca = o.ca ?? env.NEXUS_CA;

  if (before[0] === 'revoke') {
    if (before.length !== 1 || after.length > 0) throw new UsageError('expected revoke --token-file FILE');
    if (!o['token-file']) throw new UsageError('revoke needs --token-file FILE (the file --token-out wrote)');
    if (!url) throw new UsageError('--url (or $NEXUS_URL) is required');
    const unused = ['jwt-env', 'jwt-file', 'role', 'secret', 'db-creds', 'token-out', 'format', 'out', 'github-env', 'no-revoke', 'print-ids', 'max-tries', 'max-retry-s'].filter((k) => o[k as keyof typeof o] !== undefined);
    if (unused.length) throw new UsageError(`revoke takes only --token-file, --url, --ca and --spiffe-socket (not --${unused.join(', --')})`);
    return { tokenFile: o['token-file'], url, ca, socket: ca?.trim() ? undefined : socket };
  }
  if (o['token-file'] !== undefined) throw new UsageError('--token-file belongs to revoke: nexus-ci revoke --token-file FILE');

  let mode: Plan['mode'];
  const modes = [before.length > 0 || after.length > 0, o.format !== undefined || o.out !== undefined, o['github-env'] === true].filter(Boolean).length;
  if (modes !== 1) throw new UsageError('choose one of: exec -- CMD, --format F --out FILE, --github-env');
  if (before.length > 0 || after.length > 0) {
    if (before.length !== 1 || before[0] !== 'exec' || after.length === 0) throw new UsageError('expected exec -- CMD [ARGS...]');
    mode = { kind: 'exec', command: after };
  } else if (o['github-env']) {
    if (!env.GITHUB_ENV) throw new UsageError('--github-env needs $GITHUB_ENV (it runs inside a GitHub Actions step)');
    mode = { kind: 'github-env' };
  } else {
    if (!FORMATS.includes(o.format as Format)) throw new UsageError(`--format must be one of ${FORMATS.join(', ')}`);
    // Never to stdout: a job log is no place for values.
    if (!o.out) throw new UsageError('--format needs --out FILE (values are never printed)');
    mode = { kind: 'file', format: o.format as Format, out: o.out };
  }

  if (o['jwt-env'] !== undefined && o['jwt-file'] !== undefined) throw new UsageError('give exactly one of --jwt-env NAME and --jwt-file FILE');
  if (o['jwt-env'] === undefined && o['jwt-file'] === undefined && !socket) {
    throw new UsageError('give exactly one of --jwt-env NAME and --jwt-file FILE, or a SPIFFE Workload API socket (--spiffe-socket or $SPIFFE_ENDPOINT_SOCKET)');
  }
  let jwt: string | undefined;
  if (o['jwt-env'] !== undefined) {
    jwt = env[o['jwt-env']]?.trim() ?? '';
    if (!jwt) throw new UsageError(`$${o['jwt-env']} is empty or unset (does the job request an ID token under that name?)`);
  } else if (o['jwt-file'] !== undefined) {
    try {
      jwt = fs.readFileSync(o['jwt-file'], 'utf8').trim();
    } catch (err) {
      throw new UsageError(`cannot read --jwt-file ${o['jwt-file']}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (!jwt) throw new UsageError(`--jwt-file ${o['jwt-file']} is empty`);
  } else if (o.role !== undefined) {
    throw new UsageError('--role restricts a JWT exchange; with an SVID (no --jwt-env or --jwt-file) SPIFFE policies decide');
  }
  if (!url) throw new UsageError('--url (or $NEXUS_URL) is required');
  if (!o.secret?.length && !o['db-creds']?.length) throw new UsageError('at least one --secret or --db-creds is required');
  const tokenOut = o['token-out'];
  if (tokenOut !== undefined) {
    if (mode.kind === 'exec') throw new UsageError('--token-out is for a later `nexus-ci revoke`; exec gives the token back itself when CMD ends');
    if (o['no-revoke']) throw new UsageError('give one of --no-revoke (the token ends at its TTL) and --token-out FILE (a later step revokes it)');
    if (jwt === undefined) throw new UsageError('--token-out keeps an exchanged token: it needs --jwt-env or --jwt-file (an SVID is not exchanged)');
  }
  // Leases end with the token: given back right after the read, they would be dead before anyone used them.
  if (o['db-creds']?.length && mode.kind !== 'exec' && jwt !== undefined && tokenOut === undefined && !o['no-revoke']) {
    throw new UsageError('--db-creds with --format or --github-env needs --token-out FILE (and `nexus-ci revoke --token-file FILE` when the job ends), or --no-revoke (they end at the token\'s TTL): the credentials end with the token');
  }
  // A JWT with a CA given never touches the socket: --ca wins.
  const used = socket !== undefined && (jwt === undefined || !ca?.trim()) ? socket : undefined;
  if (used !== undefined) {
    const target = socketTarget(used);
    if (typeof target !== 'string') throw new UsageError(`--spiffe-socket (or $SPIFFE_ENDPOINT_SOCKET) ${target.invalid}`);
  }
  const retry = { maxTries: count(o['max-tries'], '--max-tries', 1, 10, DEFAULT_RETRY.maxTries), maxWaitS: count(o['max-retry-s'], '--max-retry-s', 0, 600, DEFAULT_RETRY.maxWaitS) };
  return { jwt, socket: used, url, ca, role: o.role, secrets: o.secret ?? [], dbCreds: o['db-creds'] ?? [], revoke: !o['no-revoke'], tokenOut, printIds: o['print-ids'] === true, retry, mode };
}

/** An integer option from `min` to `max`, or its default. */
function count(raw: string | undefined, option: string, min: number, max: number, dflt: number): number {
  if (raw === undefined) return dflt;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min && n <= max)) throw new UsageError(`${option} must be an integer from ${min} to ${max}`);
  return n;
}

/** How the server is trusted and how the job is known (`presentSvid`: on the mTLS port): see the usage text. */
function trust(p: { socket: string | undefined; ca: string | undefined; url: string }, presentSvid: boolean, env: NodeJS.ProcessEnv): Promise<TlsSetup> | TlsSetup {
  if (p.socket === undefined) {
    const ca = readCa(p.ca);
    return ca ? caTrust(ca, p.url, env.NEXUS_SERVER_SPIFFE_ID) : {};
  }
  return spiffeTls(p.socket, p.url, env.NEXUS_SERVER_SPIFFE_ID, presentSvid);
}

/** Written beside the target with mode 0600 and renamed into place: never readable by others, never half-written. */
function writePrivate(file: string, text: string): void {
  const tmp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/** The ids a job may log (--print-ids): the token's, and each lease's; never a value. */
function printIds(got: Fetched, dbCreds: ReturnType<typeof parseDbCreds>): void {
  if (got.tokenId) process.stderr.write(`nexus-ci: token id ${got.tokenId}\n`);
  got.leases.forEach((l, i) => process.stderr.write(`nexus-ci: lease ${l.lease_id} (db-creds "${dbCreds[i]!.line}", ${l.lease_duration} s)\n`));
}

async function main(argv: string[]): Promise<number> {
  let p: Plan | RevokePlan;
  let specs;
  let dbCreds;
  let tls: TlsSetup;
  try {
    p = plan(argv, process.env);
    if ('tokenFile' in p) {
      const revoke = p;
      return await revokeTokenFile(revoke.tokenFile, revoke.url, await trust(revoke, false, process.env), (line) => process.stderr.write(`nexus-ci: ${line}\n`));
    }
    dbCreds = parseDbCreds(p.dbCreds);
    specs = parseSpecs(p.secrets, dbCreds.length > 0);
    // A socket that gives no SVID throws SpiffeError: exit 1 below, like any refusal.
    tls = await trust(p, p.jwt === undefined, process.env);
    trace('arguments and trust read');
  } catch (err) {
    if (err instanceof UsageError || err instanceof SpecError || err instanceof ServerIdConfigError) {
      process.stderr.write(err.message ? `nexus-ci: ${err.message}\n${USAGE}\n` : `${USAGE}\n`);
      return err.message ? 2 : 0;
    }
    throw err;
  }
  const relay = p.mode.kind === 'exec' ? new Relay() : undefined;
  const keepToken = relay !== undefined || !p.revoke || p.tokenOut !== undefined;
  // One line per retry, on stderr like every other word of nexus-ci: what and why, never a token.
  const retry = { ...p.retry, log: (line: string) => process.stderr.write(`nexus-ci: ${line}\n`) };
  // exec gives the token back when CMD ends: on this same keep-alive connection (one TLS handshake a job).
  const client = relay ? nexusClient(p.url, tls, retry) : undefined;
  const got = await fetchSecrets({ url: p.url, tls, jwt: p.jwt, role: p.role, specs, dbCreds, keepToken, retry, client });
  const { values, token } = got;
  trace('secrets fetched');
  if (got.warning) process.stderr.write(`nexus-ci: ${got.warning}\n`);
  if (p.printIds) printIds(got, dbCreds);
  if (token && p.tokenOut !== undefined) {
    writePrivate(p.tokenOut, `${token}\n`);
    process.stderr.write(`nexus-ci: kept the job's token ${got.tokenId} in ${p.tokenOut} (mode 0600): run nexus-ci revoke --token-file ${p.tokenOut} when the job ends\n`);
  }
  switch (p.mode.kind) {
    case 'exec': {
      // A signal during the read: the command never starts; the token is given back all the same.
      const code = relay!.early() ?? (await relay!.run(p.mode.command, values));
      trace('command ended');
      // The job's credentials end with its command, not at their TTL.
      const g = token && p.revoke ? await revokeWith(client!, token) : undefined;
      client!.close();
      if (g?.outcome === 'failed') process.stderr.write(`nexus-ci: ${g.warning}\n`);
      trace('token given back');
      return code;
    }
    case 'file':
      writePrivate(p.mode.out, render(p.mode.format, values));
      process.stderr.write(`nexus-ci: wrote ${values.map((v) => v.name).join(', ')} to ${p.mode.out} (mode 0600)\n`);
      return 0;
    case 'github-env':
      for (const m of maskable(values.map((v) => v.value))) core.setSecret(m);
      for (const v of values) core.exportVariable(v.name, v.value);
      process.stderr.write(`nexus-ci: exported ${values.map((v) => v.name).join(', ')} to $GITHUB_ENV (masked)\n`);
      return 0;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`nexus-ci: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
