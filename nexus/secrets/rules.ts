import { BadRequestError } from '../errors.js';
import type { SecretData, SecretPath } from './types.js';

export const MAX_PATH_BYTES = 512;
export const MAX_SEGMENTS = 32;
export const MAX_VALUE_BYTES = 64 * 1024;
export const MAX_VERSIONS_PER_CALL = 100;
export const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** True for a single valid path segment: `[A-Za-z0-9._-]+`, never `.` or `..`. */
export function isValidSegment(s: string): boolean {
  return SEGMENT.test(s) && s !== '.' && s !== '..';
}

export function parseSecretPath(raw: unknown): SecretPath {
  if (typeof raw !== 'string' || raw.length === 0) throw new BadRequestError('path.empty', 'path must be a non-empty string');
  if (Buffer.byteLength(raw, 'utf8') > MAX_PATH_BYTES) {
    throw new BadRequestError('path.length', `path is longer than ${MAX_PATH_BYTES} bytes`);
  }
  if (raw.startsWith('/') || raw.endsWith('/') || raw.includes('//')) {
    throw new BadRequestError('path.slashes', 'path must not start or end with "/" or contain "//"');
  }
  const segments = raw.split('/');
  if (segments.length > MAX_SEGMENTS) throw new BadRequestError('path.segments', `path has more than ${MAX_SEGMENTS} segments`);
  for (const s of segments) {
    if (!SEGMENT.test(s)) throw new BadRequestError('path.charset', 'path segments may contain only A-Z a-z 0-9 . _ -');
    if (s === '.' || s === '..') throw new BadRequestError('path.dot_segment', 'path segments must not be "." or ".."');
  }
  return raw as SecretPath;
}

/** A list prefix: empty, or path characters (a partial segment is allowed). */
export function parsePrefix(raw: unknown): string {
  if (raw === undefined || raw === null || raw === '') return '';
  if (typeof raw !== 'string' || !/^[A-Za-z0-9._/-]*$/.test(raw)) {
    throw new BadRequestError('prefix.charset', 'prefix may contain only A-Z a-z 0-9 . _ - /');
  }
  if (raw.length > MAX_PATH_BYTES) throw new BadRequestError('prefix.length', `prefix is longer than ${MAX_PATH_BYTES} bytes`);
  if (raw.startsWith('/') || raw.includes('//')) throw new BadRequestError('prefix.slashes', 'prefix must not start with "/" or contain "//"');
  // Every whole segment must be a valid one; the last may be partial ("..a" starts a valid segment).
  if (raw.split('/').slice(0, -1).some((s) => !isValidSegment(s))) {
    throw new BadRequestError('prefix.dot_segment', 'prefix segments must not be "." or ".."');
  }
  return raw;
}

/** The entries of a plain JSON object with non-empty keys (a value, or a patch to one). */
function dataEntries(raw: unknown, values: string): Array<[string, unknown]> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new BadRequestError('data.type', `data must be a JSON object of ${values} values`);
  }
  const proto = Object.getPrototypeOf(raw);
  if (proto !== Object.prototype && proto !== null) throw new BadRequestError('data.type', 'data must be a plain JSON object');
  const entries = Object.entries(raw);
  if (entries.some(([k]) => k.length === 0)) throw new BadRequestError('data.key', 'data keys must be non-empty');
  return entries;
}

export function parseSecretData(raw: unknown): { data: SecretData; encoded: Buffer } {
  const data: SecretData = Object.create(null);
  for (const [k, v] of dataEntries(raw, 'string')) {
    if (typeof v !== 'string') throw new BadRequestError('data.value_type', `data value for key ${JSON.stringify(k)} must be a string`);
    data[k] = v;
  }
  const encoded = Buffer.from(JSON.stringify(data), 'utf8');
  if (encoded.length > MAX_VALUE_BYTES) {
    throw new BadRequestError('data.size', `data is larger than ${MAX_VALUE_BYTES} bytes encoded`);
  }
  return { data, encoded };
}

/**
 * A patch: string values to set, `null` to remove a key. The merged result is
 * checked by parseSecretData like any other value.
 */
export function parsePatchData(raw: unknown): Record<string, string | null> {
  const patch: Record<string, string | null> = Object.create(null);
  for (const [k, v] of dataEntries(raw, 'string or null')) {
    if (typeof v !== 'string' && v !== null) throw new BadRequestError('data.value_type', `data value for key ${JSON.stringify(k)} must be a string or null`);
    patch[k] = v;
  }
  return patch;
}

export function parseVersion(raw: unknown, rule = 'version'): number {
  const n = typeof raw === 'string' && /^\d{1,15}$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) {
    throw new BadRequestError(rule, `${rule} must be a positive integer`);
  }
  return n;
}
