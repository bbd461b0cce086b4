// nexus-ci: the GitHub Action's logic for any CI (GitLab, Jenkins, Buildkite,
// CircleCI), with the job's JWT on the OIDC port, or, on a SPIRE-managed
// runner, with its X509-SVID on the mTLS port. Bundled with the action by
// `npm run build:ci`, so a job needs no TypeScript tool chain.
import * as core from '@actions/core';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { socketTarget } from '../../nexus/spiffe/endpoint.js';
import { ServerIdConfigError } from '../../nexus/spiffe/server-id.js';
import { readCa, type TlsSetup } from './client.js';
import { fetchSecrets, maskable, revokeQuietly, type Resolved } from './fetch.js';
import { FORMATS, render, type Format } from './formats.js';
import { caTrust } from './server-trust.js';
import { spiffeTls } from './spiffe.js';
import { parseSpecs, SpecError } from './spec.js';

const USAGE = `usage: nexus-ci (--jwt-env NAME | --jwt-file FILE | --spiffe-socket SOCKET) --url URL [--ca FILE] [--role NAME]
                --secret 'PATH KEY | ENV_NAME' | --secret 'PATH | PREFIX_' [--secret ...]
                ( exec -- CMD [ARGS...] | --format dotenv|json|shell --out FILE | --github-env ) [--no-revoke]
  --url defaults to $NEXUS_URL, --ca to $NEXUS_CA (PEM file; omit for a publicly trusted certificate);
    a --ca that is a SPIFFE bundle (or a server certificate with a SPIFFE ID) means the server must
    present $NEXUS_SERVER_SPIFFE_ID (default spiffe://<trust domain>/nexus): its host name is not enough
  the exchanged token is revoked after the read (exec: when CMD ends); --no-revoke keeps it to its TTL
  'PATH | PREFIX_' (PREFIX_ may be empty) refuses keys that would become loader, shell or runner
    variables (BASH_ENV, LD_*, NODE_OPTIONS, PATH, GIT_*, ...): name those with 'PATH KEY | NAME'
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
  /** Give the exchanged token back: after the read, or (exec) when the child ends. */
  revoke: boolean;
  mode: { kind: 'exec'; command: string[] } | { kind: 'file'; format: Format; out: string } | { kind: 'github-env' };
}

function plan(argv: string[], env: NodeJS.ProcessEnv): Plan {
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
        format: { type: 'string' },
        out: { type: 'string' },
        'github-env': { type: 'boolean' },
        'no-revoke': { type: 'boolean' },
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

  // An empty value counts as unset: `--spiffe-socket ''` ignores a $SPIFFE_ENDPOINT_SOCKET the runner sets.
  const socket = (o['spiffe-socket'] ?? env.SPIFFE_ENDPOINT_SOCKET) || undefined;
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
  const url = o.url ?? env.NEXUS_URL;
  if (!url) throw new UsageError('--url (or $NEXUS_URL) is required');
  if (!o.secret?.length) throw new UsageError('at least one --secret is required');
  const ca = o.ca ?? env.NEXUS_CA;
  // A JWT with a CA given never touches the socket: --ca wins.
  const used = socket !== undefined && (jwt === undefined || !ca?.trim()) ? socket : undefined;
  if (used !== undefined) {
    const target = socketTarget(used);
    if (typeof target !== 'string') throw new UsageError(`--spiffe-socket (or $SPIFFE_ENDPOINT_SOCKET) ${target.invalid}`);
  }
  return { jwt, socket: used, url, ca, role: o.role, secrets: o.secret, revoke: !o['no-revoke'], mode };
}

/** How the server is trusted and how the job is known: see the usage text. */
function trust(p: Plan, env: NodeJS.ProcessEnv): Promise<TlsSetup> | TlsSetup {
  if (p.socket === undefined) {
    const ca = readCa(p.ca);
    return ca ? caTrust(ca, p.url, env.NEXUS_SERVER_SPIFFE_ID) : {};
  }
  return spiffeTls(p.socket, p.url, env.NEXUS_SERVER_SPIFFE_ID, p.jwt === undefined);
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

function runChild(command: string[], values: Resolved[]): Promise<number> {
  const env = { ...process.env, ...Object.fromEntries(values.map((v) => [v.name, v.value])) };
  return new Promise((resolve) => {
    const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env });
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, forward);
    child.on('error', (err) => {
      process.stderr.write(`nexus-ci: cannot run ${command[0]}: ${err.message}\n`);
      resolve(127);
    });
    child.on('close', (code, signal) => resolve(code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0)));
  });
}

async function main(argv: string[]): Promise<number> {
  let p: Plan;
  let specs;
  let tls: TlsSetup;
  try {
    p = plan(argv, process.env);
    specs = parseSpecs(p.secrets);
    // A socket that gives no SVID throws SpiffeError: exit 1 below, like any refusal.
    tls = await trust(p, process.env);
  } catch (err) {
    if (err instanceof UsageError || err instanceof SpecError || err instanceof ServerIdConfigError) {
      process.stderr.write(err.message ? `nexus-ci: ${err.message}\n${USAGE}\n` : `${USAGE}\n`);
      return err.message ? 2 : 0;
    }
    throw err;
  }
  const exec = p.mode.kind === 'exec';
  const { values, token, warning } = await fetchSecrets({ url: p.url, tls, jwt: p.jwt, role: p.role, specs, keepToken: exec || !p.revoke });
  if (warning) process.stderr.write(`nexus-ci: ${warning}\n`);
  switch (p.mode.kind) {
    case 'exec': {
      const code = await runChild(p.mode.command, values);
      // The job's credential ends with its command, not at its TTL.
      const failed = token && p.revoke ? await revokeQuietly(p.url, tls, token) : undefined;
      if (failed) process.stderr.write(`nexus-ci: ${failed}\n`);
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
