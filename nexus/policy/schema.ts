import { PERMISSIONS, type Permission } from '../auth/principal.js';
import { parseInput, z } from '../schema.js';

/** The name of a policy, issuer or role (from the URL). */
export const ObjectName = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,128}$/)
  .describe('1 to 128 of A-Z a-z 0-9 . _ -');

/** A name from the URL; a bad one is a 400 (rule `name`). */
export function parseName(raw: unknown): string {
  return parseInput(ObjectName, raw, 'name');
}

const PATH_GLOB = /^[A-Za-z0-9._/*-]{1,512}$/;
const SPIFFE_GLOB = /^spiffe:\/\/[a-z0-9._*-]+(\/[A-Za-z0-9._*-]+)*$/;

/** Anchored: `*` within one segment, `**` across; no empty, `.` or `..` segments. */
export const PathGlob = z
  .string()
  .regex(PATH_GLOB)
  .refine((g) => !g.startsWith('/') && !g.includes('//') && !/\*{3,}/.test(g) && !g.split('/').some((s) => s === '.' || s === '..'))
  .describe('a path glob: A-Z a-z 0-9 . _ - / with * or **, no empty, "." or ".." segments');

export const SpiffeGlob = z
  .string()
  .max(2048)
  .regex(SPIFFE_GLOB)
  .refine((g) => !/\*{3,}/.test(g))
  .describe('a spiffe:// ID, optionally with * or ** globs');

/** A non-empty list of permissions out of `allowed`; duplicates dropped. */
export function permissionList<P extends Permission>(allowed: readonly [P, ...P[]]) {
  return z
    .array(z.enum(allowed))
    .min(1)
    .overwrite((ps) => [...new Set(ps)])
    .describe(`a non-empty list of ${allowed.join(', ')}`);
}

export const Timestamps = {
  created_at: z.string().describe('when it was created (ISO 8601; empty for built-ins)'),
  updated_at: z.string().describe('when it last changed (ISO 8601; empty for built-ins)'),
};

/** PUT /v1/policies/{name}: the name comes from the URL (a `name` field is ignored). */
export const PolicyInput = z
  .strictObject({
    name: z.unknown().optional().describe('ignored: the name is the one in the URL'),
    spiffe_id: SpiffeGlob,
    paths: z.array(PathGlob).min(1).max(100).describe('a list of 1 to 100 path globs'),
    permissions: permissionList(PERMISSIONS as [Permission, ...Permission[]]),
  })
  .meta({ id: 'PolicyInput' });
export type PolicyInput = z.output<typeof PolicyInput>;

/** A SPIFFE policy as stored and served. */
export const Policy = PolicyInput.omit({ name: true })
  .extend({
    name: ObjectName,
    ...Timestamps,
    builtin: z.literal(true).optional().describe('the built-in admin policy (NEXUS_ADMIN_SPIFFE_ID); cannot be changed through the API'),
  })
  .meta({ id: 'Policy' });
export type Policy = z.output<typeof Policy>;

export const PolicyList = z.object({ policies: z.array(Policy) }).meta({ id: 'PolicyList' });
