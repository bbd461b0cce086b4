import { ruled, z } from '../schema.js';
import { MAX_VALUE_BYTES, MAX_VERSIONS_PER_CALL, parsePatchData, parseSecretData } from './rules.js';

/** A secret's value as served: string keys to string values. */
export const SecretData = z.record(z.string().min(1), z.string()).describe(`string keys to string values, at most ${MAX_VALUE_BYTES / 1024} KiB encoded`).meta({ id: 'SecretData' });
export type SecretData = z.output<typeof SecretData>;

/** A secret's value as written: checked by the value rules (rules.ts), which keep every key, `__proto__` too. */
const SecretDataInput = ruled((raw) => parseSecretData(raw).data, SecretData);

// A number, or its decimal string (as a query parameter would carry it).
export const Version = z
  .union([z.int().min(1), z.string().regex(/^\d{1,15}$/).transform(Number).pipe(z.int().min(1))])
  .describe('a positive integer');
/** `GET /v1/secrets?limit=N`: a page's size. */
const limit = z.int().min(1).max(1000);
export const ListLimit = limit.default(100).describe('an integer from 1 to 1000');
/** The same, as the query string carries it. */
export const ListLimitQuery = z.string().regex(/^\d{1,5}$/).transform(Number).pipe(limit).describe('an integer from 1 to 1000');

export const Cas = z.int().min(0).describe('a non-negative integer: the current latest version (deleted ones count); 0 = create only');
export const VersionList = z
  .array(Version)
  .min(1)
  .max(MAX_VERSIONS_PER_CALL)
  .overwrite((l) => [...new Set(l)])
  .describe(`a list of 1 to ${MAX_VERSIONS_PER_CALL} positive integers`);

/** PUT /v1/secrets/{path}. */
export const PutSecretInput = z.object({ data: SecretDataInput, cas: Cas.optional() }).meta({ id: 'PutSecretInput' });
/** PATCH /v1/secrets/{path}: keys to set, `null` to remove one (the merged value is checked like any other). */
export const PatchData = z.record(z.string().min(1), z.string().nullable()).describe('keys to set (a string) or remove (null)').meta({ id: 'PatchData' });
export const PatchSecretInput = z.object({ data: ruled((raw) => parsePatchData(raw), PatchData), cas: Cas.optional() }).meta({ id: 'PatchSecretInput' });
/** POST /v1/secrets/{path}:rollback. */
export const RollbackInput = z.object({ version: Version, cas: Cas.optional() }).meta({ id: 'RollbackInput' });
/** What a delete, undelete or destroy did to each version it named (the 200 answer when some were left alone). */
export const VersionsOutcome = z
  .object({
    path: z.string(),
    done: z.array(Version),
    skipped: z.array(z.object({ version: Version, reason: z.enum(['not_found', 'already_deleted', 'not_deleted', 'destroyed', 'already_destroyed']) })),
  })
  .meta({ id: 'VersionsOutcome' });

/** POST /v1/secrets/{path}:undelete and :destroy. */
export const VersionsInput = z.object({ versions: VersionList }).meta({ id: 'VersionsInput' });

export const SecretVersion = z
  .object({ path: z.string(), version: z.int().min(1), data: SecretData, created_at: z.iso.datetime() })
  .meta({ id: 'SecretVersion' });
export type SecretVersion = z.output<typeof SecretVersion>;

export const VersionInfo = z.object({ version: z.int().min(1), created_at: z.iso.datetime(), deleted_at: z.iso.datetime().nullable(), destroyed: z.boolean() }).meta({ id: 'VersionInfo' });
export type VersionInfo = z.output<typeof VersionInfo>;

export const SecretMetadata = z.object({ path: z.string(), current_version: z.int().min(0), versions: z.array(VersionInfo) }).meta({ id: 'SecretMetadata' });
export type SecretMetadata = z.output<typeof SecretMetadata>;

/**
 * The response to a write (the service's result also says whether it created
 * the secret). No version to a caller who may not read the path: version 1 or
 * N would tell it whether the path existed.
 */
export const PutResult = z
  .object({ path: z.string(), version: z.int().min(1).optional().describe('the new version; omitted for a caller who may not read the path') })
  .meta({ id: 'PutResult' });

export const ListPage = z
  .object({ paths: z.array(z.string()), next_cursor: z.string().nullable().describe('opaque; null on the last page') })
  .meta({ id: 'ListPage' });
export type ListPage = z.output<typeof ListPage>;

/** A page of a subtree with each secret's latest data (`GET /v1/secrets?include=data` on the OIDC port). */
export const SecretDataPage = z
  .object({
    secrets: z.array(z.object({ path: z.string(), version: z.int().min(1), data: SecretData })).describe('the readable secrets of this page, in path order; a deleted or destroyed latest version is left out'),
    next_cursor: z.string().nullable().describe('opaque; null on the last page'),
  })
  .meta({ id: 'SecretDataPage' });
export type SecretDataPage = z.output<typeof SecretDataPage>;
/** How many secrets one data page holds at most (values are up to 64 KiB each). */
export const MAX_DATA_PAGE = 100;
