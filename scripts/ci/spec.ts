/**
 * The secrets spec shared by the GitHub Action (`secrets:` input, one per
 * line) and nexus-ci (`--secret`, repeatable):
 *
 *   PATH KEY | ENV_NAME     one key of the secret at PATH, as ENV_NAME
 *   PATH | PREFIX_          every key of it, as PREFIX_<KEY> (the prefix may be
 *                           empty), except that no key may become a name outside
 *                           writerMayName: the whole request is refused
 *   PATH/** | PREFIX_       every secret the job may read under PATH/ (PATH/*:
 *                           one level only), each key as
 *                           PREFIX_<RELATIVE_PATH>_<KEY>; at most MAX_TREE of them
 *
 * Blank lines and lines starting with `#` are skipped.
 */
export type SecretSpec =
  | { kind: 'key'; path: string; key: string; name: string; line: string }
  | { kind: 'all'; path: string; prefix: string; line: string }
  | { kind: 'tree'; path: string; depth: 'all' | 'one'; prefix: string; line: string };

/** The most secrets one subtree line may bring: a job with more names a narrower path (or more lines). */
export const MAX_TREE = 500;

export class SpecError extends Error {}

// The server's path rules (segments of [A-Za-z0-9._-], no empty, . or ..) checked here too, so a typo names its line.
const SEGMENT = /^[A-Za-z0-9._-]+$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const KEY = /^[^\s|]+$/;

function checkPath(path: string, line: string): string {
  const segs = path.split('/');
  if (!segs.every((s) => SEGMENT.test(s) && s !== '.' && s !== '..')) throw new SpecError(`secret spec "${line}": ${JSON.stringify(path)} is not a secret path`);
  return path;
}

export function parseSpecLine(raw: string): SecretSpec | null {
  const line = raw.trim();
  if (!line || line.startsWith('#')) return null;
  const bar = line.lastIndexOf('|');
  if (bar < 0) throw new SpecError(`secret spec "${line}": expected "PATH KEY | ENV_NAME", "PATH | PREFIX_" or "PATH/** | PREFIX_"`);
  const left = line.slice(0, bar).trim().split(/\s+/).filter(Boolean);
  const name = line.slice(bar + 1).trim();
  if (left.length === 0 || left.length > 2) throw new SpecError(`secret spec "${line}": expected "PATH KEY | ENV_NAME", "PATH | PREFIX_" or "PATH/** | PREFIX_"`);
  const tree = /^(.+)\/(\*\*?)$/.exec(left[0]!);
  if (tree) {
    if (left.length !== 1) throw new SpecError(`secret spec "${line}": a subtree (${left[0]}) takes no key: "PATH/** | PREFIX_"`);
    if (name !== '' && !ENV_NAME.test(name)) throw new SpecError(`secret spec "${line}": ${JSON.stringify(name)} is not a valid variable name prefix`);
    return { kind: 'tree', path: checkPath(tree[1]!, line), depth: tree[2] === '**' ? 'all' : 'one', prefix: name, line };
  }
  const path = checkPath(left[0]!, line);
  if (left.length === 2) {
    if (!KEY.test(left[1]!)) throw new SpecError(`secret spec "${line}": bad key ${JSON.stringify(left[1])}`);
    if (!ENV_NAME.test(name)) throw new SpecError(`secret spec "${line}": ${JSON.stringify(name)} is not a valid environment variable name`);
    return { kind: 'key', path, key: left[1]!, name, line };
  }
  if (name !== '' && !ENV_NAME.test(name)) throw new SpecError(`secret spec "${line}": ${JSON.stringify(name)} is not a valid variable name prefix`);
  return { kind: 'all', path, prefix: name, line };
}

/** Every spec of a multi-line input or of repeated options; at least one, unless the request asks for database credentials (`dbCredsToo`). */
export function parseSpecs(lines: string[], dbCredsToo = false): SecretSpec[] {
  const specs = lines.flatMap((l) => l.split(/\r?\n/)).map(parseSpecLine).filter((s): s is SecretSpec => s !== null);
  if (specs.length === 0 && !dbCredsToo) throw new SpecError('no secrets requested');
  return specs;
}

// Under `PATH | PREFIX`, the secret's writer chooses names, and whoever may
// write a secret (another team, a CI role with `write`) is not whoever wrote
// the job. These names run code or redirect trust in the job that reads
// them (a key BASH_ENV="$(cmd)" runs cmd in every later bash), or belong to
// the runner itself: only a job's own `PATH KEY | NAME` line may set them.
const HOOKS = new Set(['BASH_ENV', 'ENV', 'SHELLOPTS', 'BASHOPTS', 'PS1', 'PS2', 'PS3', 'PS4', 'PROMPT_COMMAND', 'IFS', 'CDPATH', 'GLOBIGNORE', 'PATH', 'HOME', 'TMPDIR', 'SHELL',
  'NODE_OPTIONS', 'NODE_PATH', 'NODE_EXTRA_CA_CERTS', 'NODE_TLS_REJECT_UNAUTHORIZED', 'RUBYOPT', 'RUBYLIB', 'JAVA_TOOL_OPTIONS', '_JAVA_OPTIONS', 'JDK_JAVA_OPTIONS', 'GCONV_PATH',
  'SSL_CERT_FILE', 'SSL_CERT_DIR', 'CURL_CA_BUNDLE', 'REQUESTS_CA_BUNDLE', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'NO_PROXY', 'EDITOR', 'VISUAL', 'PAGER', 'LESSOPEN', 'BROWSER']);
const HOOK_PREFIXES = ['LD_', 'DYLD_', 'BASH_FUNC_', 'PYTHON', 'PERL5', 'GIT_', 'SSH_', 'GITHUB_', 'RUNNER_', 'ACTIONS_', 'CI_', 'NPM_CONFIG_', 'NEXUS_', 'SPIFFE_'];

/** Whether a name a secret's keys produce (under `PATH | PREFIX`) may be set in the job: not a loader or shell hook, nor the runner's. */
export function writerMayName(name: string): boolean {
  return !HOOKS.has(name) && !HOOK_PREFIXES.some((p) => name.startsWith(p));
}

/** The variable a key becomes under `PATH | PREFIX_` (under `PATH/** | PREFIX_`, the key is `<RELATIVE_PATH>_<KEY>`): upper case, anything outside [A-Z0-9_] as `_`. */
export function prefixedName(prefix: string, key: string): string {
  const name = `${prefix}${key}`.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  return /^[0-9]/.test(name) ? `_${name}` : name;
}

/**
 * The database credentials a job asks for (the action's `db-creds`, nexus-ci's
 * `--db-creds`), one per line:
 *
 *   ROLE | PREFIX_          a fresh user of the credential role ROLE, as
 *                           PREFIX_USERNAME and PREFIX_PASSWORD
 *
 * The job writes the prefix (no secret's content chooses a name here), so it
 * must be given, in upper case: USERNAME alone would take the shell's own.
 */
export interface DbCredSpec {
  role: string;
  prefix: string;
  line: string;
}

// The server's name rule for credential roles (nexus/policy/schema.ts ObjectName): checked here so a typo names its line.
const ROLE_NAME = /^[A-Za-z0-9._-]{1,128}$/;
const UPPER_PREFIX = /^[A-Z_][A-Z0-9_]*$/;

export function dbCredNames(spec: DbCredSpec): { username: string; password: string } {
  return { username: `${spec.prefix}USERNAME`, password: `${spec.prefix}PASSWORD` };
}

function parseDbCredLine(raw: string): DbCredSpec | null {
  const line = raw.trim();
  if (!line || line.startsWith('#')) return null;
  const shape = `db-creds "${line}": expected "ROLE | PREFIX_" (e.g. "deploy | DB_")`;
  const bar = line.indexOf('|');
  if (bar < 0) throw new SpecError(shape);
  const left = line.slice(0, bar).trim().split(/\s+/).filter(Boolean);
  const prefix = line.slice(bar + 1).trim();
  if (left.length !== 1) throw new SpecError(shape);
  const role = left[0]!;
  if (!ROLE_NAME.test(role)) throw new SpecError(`db-creds "${line}": ${JSON.stringify(role)} is not a role name (1 to 128 of A-Z a-z 0-9 . _ -; the role, not its path db/creds/ROLE)`);
  if (!prefix) throw new SpecError(`db-creds "${line}": needs a prefix, e.g. "${role} | DB_" (USERNAME and PASSWORD alone would clash with the shell's own)`);
  if (!UPPER_PREFIX.test(prefix)) throw new SpecError(`db-creds "${line}": ${JSON.stringify(prefix)} is not a valid variable name prefix (upper case A-Z 0-9 _, not starting with a digit)`);
  return { role, prefix, line };
}

/** Every db-creds line of multi-line inputs or repeated options; none is fine (they are optional). */
export function parseDbCreds(lines: string[]): DbCredSpec[] {
  const specs = lines.flatMap((l) => l.split(/\r?\n/)).map(parseDbCredLine).filter((s): s is DbCredSpec => s !== null);
  const byPrefix = new Map<string, DbCredSpec>();
  for (const s of specs) {
    const before = byPrefix.get(s.prefix);
    if (before) throw new SpecError(`db-creds "${s.line}": ${s.prefix}USERNAME and ${s.prefix}PASSWORD are already set by "${before.line}"`);
    byPrefix.set(s.prefix, s);
  }
  return specs;
}
