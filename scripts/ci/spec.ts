/**
 * The secrets spec shared by the GitHub Action (`secrets:` input, one per
 * line) and nexus-ci (`--secret`, repeatable):
 *
 *   PATH KEY | ENV_NAME     one key of the secret at PATH, as ENV_NAME
 *   PATH | PREFIX_          every key of it, as PREFIX_<KEY>
 *
 * Blank lines and lines starting with `#` are skipped.
 */
export type SecretSpec =
  | { kind: 'key'; path: string; key: string; name: string; line: string }
  | { kind: 'all'; path: string; prefix: string; line: string };

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
  if (bar < 0) throw new SpecError(`secret spec "${line}": expected "PATH KEY | ENV_NAME" or "PATH | PREFIX_"`);
  const left = line.slice(0, bar).trim().split(/\s+/).filter(Boolean);
  const name = line.slice(bar + 1).trim();
  if (left.length === 0 || left.length > 2) throw new SpecError(`secret spec "${line}": expected "PATH KEY | ENV_NAME" or "PATH | PREFIX_"`);
  const path = checkPath(left[0]!, line);
  if (left.length === 2) {
    if (!KEY.test(left[1]!)) throw new SpecError(`secret spec "${line}": bad key ${JSON.stringify(left[1])}`);
    if (!ENV_NAME.test(name)) throw new SpecError(`secret spec "${line}": ${JSON.stringify(name)} is not a valid environment variable name`);
    return { kind: 'key', path, key: left[1]!, name, line };
  }
  if (name !== '' && !ENV_NAME.test(name)) throw new SpecError(`secret spec "${line}": ${JSON.stringify(name)} is not a valid variable name prefix`);
  return { kind: 'all', path, prefix: name, line };
}

/** Every spec of a multi-line input or of repeated options; at least one. */
export function parseSpecs(lines: string[]): SecretSpec[] {
  const specs = lines.flatMap((l) => l.split(/\r?\n/)).map(parseSpecLine).filter((s): s is SecretSpec => s !== null);
  if (specs.length === 0) throw new SpecError('no secrets requested');
  return specs;
}

/** The variable a key becomes under `PATH | PREFIX_`: upper case, anything outside [A-Z0-9_] as `_`. */
export function prefixedName(prefix: string, key: string): string {
  const name = `${prefix}${key}`.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  return /^[0-9]/.test(name) ? `_${name}` : name;
}
