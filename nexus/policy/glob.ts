import { BadRequestError } from '../errors.js';

/**
 * Anchored globs: `*` matches within one segment, `**` across segments.
 * Every other character is literal, so a pattern never matches by substring.
 */
export function compileGlob(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        re += '.*';
        i++;
      } else {
        re += '[^/]*';
      }
    } else {
      re += c.replace(/[.+?^${}()|[\]\\/-]/g, '\\$&');
    }
  }
  return new RegExp(`^${re}$`);
}

const PATH_GLOB = /^[A-Za-z0-9._/*-]{1,512}$/;
const SPIFFE_GLOB = /^spiffe:\/\/[a-z0-9._*-]+(\/[A-Za-z0-9._*-]+)*$/;

export function parsePathGlob(raw: unknown, rule = 'paths'): string {
  if (
    typeof raw !== 'string' ||
    !PATH_GLOB.test(raw) ||
    raw.startsWith('/') ||
    raw.includes('//') ||
    /\*{3,}/.test(raw) ||
    raw.split('/').some((s) => s === '.' || s === '..')
  ) {
    throw new BadRequestError(rule, `path glob ${JSON.stringify(raw)} must use A-Z a-z 0-9 . _ - / and * or **`);
  }
  return raw;
}

export function parseSpiffeGlob(raw: unknown): string {
  if (typeof raw !== 'string' || raw.length > 2048 || !SPIFFE_GLOB.test(raw) || /\*{3,}/.test(raw)) {
    throw new BadRequestError('spiffe_id', 'spiffe_id must be a spiffe:// ID, optionally with * or ** globs');
  }
  return raw;
}
