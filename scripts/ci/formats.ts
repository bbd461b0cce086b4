import type { Resolved } from './fetch.js';

export type Format = 'dotenv' | 'json' | 'shell';
export const FORMATS: readonly Format[] = ['dotenv', 'json', 'shell'];

/** A value the chosen format cannot carry faithfully: nothing is written (exit 1). The message names the variable, never the value. */
export class FormatError extends Error {}

/** POSIX shell single quotes: nothing inside is expanded. */
function shellQuote(v: string): string {
  return `'${v.replace(/'/g, `'\\''`)}'`;
}

/**
 * A .env file is read two ways: by dotenv parsers, and by shells
 * (`set -a; . ./.env`). The two agree on only two forms, each inert to both:
 * single quotes (neither reader expands anything inside), for a value with no
 * `'`; else double quotes, for a value with none of the characters a shell
 * expands or unescapes there (`$`, backtick, `\`, `"`), which dotenv leaves
 * alone too. A value needing both, a trailing backslash (dotenv's scanner
 * reads `\'` as an escaped quote), a carriage return (dotenv turns it into a
 * line feed) or a NUL (no environment holds one) has no such form: refused.
 */
function dotenvQuote(name: string, v: string): string {
  const refuse = (why: string) => new FormatError(`${name}: --format dotenv cannot write its value so that a shell and a dotenv parser both read it back unchanged (${why}); use --format shell or json, or exec`);
  if (v.includes('\0')) throw refuse('it holds a NUL byte');
  if (v.includes('\r')) throw refuse('it holds a carriage return');
  if (v.endsWith('\\')) throw refuse('it ends in a backslash');
  if (!v.includes("'")) return `'${v}'`;
  if (!/[$`\\"]/.test(v)) return `"${v}"`;
  throw refuse(`it holds ' together with one of $ \` \\ "`);
}

export function render(format: Format, values: Resolved[]): string {
  switch (format) {
    case 'json':
      return `${JSON.stringify(Object.fromEntries(values.map((v) => [v.name, v.value])), null, 2)}\n`;
    case 'shell':
      return values.map((v) => `export ${v.name}=${shellQuote(v.value)}\n`).join('');
    case 'dotenv':
      return values.map((v) => `${v.name}=${dotenvQuote(v.name, v.value)}\n`).join('');
  }
}
