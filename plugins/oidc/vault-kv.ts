import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { OidcPrincipal } from '../../nexus/auth/principal.js';
import { BadRequestError, ForbiddenError, NotFoundError } from '../../nexus/errors.js';
import { noteAudit } from '../../nexus/http/audit.js';
import { queryOne } from '../../nexus/http/secrets-routes.js';
import { listScope } from '../../nexus/policy/list-scope.js';
import { parseSecretPath } from '../../nexus/secrets/rules.js';
import type { SecretsService } from '../../nexus/secrets/service.js';
import { grantAllows } from './roles.js';
import type { VaultKeyList, VaultKvMetadata, VaultMountResponse } from './vault-schema.js';

/**
 * What the vault CLI asks before and besides a KV v2 read (command/kv_*.go):
 * the preflight that tells it the mount is KV v2, one-level listings and
 * version metadata. `secret` is the only mount there is.
 */

export const VAULT_MOUNT = 'secret';
/** Older CLIs ask the UI endpoint, newer ones sys/mounts-all; a 404 would make either fall back to KV v1. */
export const VAULT_PREFLIGHTS = ['/v1/sys/internal/ui/mounts/', '/v1/sys/mounts-all/'];
export const VAULT_METADATA = `/v1/${VAULT_MOUNT}/metadata`;

export interface VaultKvDeps {
  secrets: Pick<SecretsService, 'list' | 'metadata'>;
  authenticate: Middleware;
  principal(ctx: Context): OidcPrincipal;
  envelope(ctx: Context): { request_id: string; lease_id: ''; renewable: false; lease_duration: 0; wrap_info: null; warnings: null };
}

/** Vault parses `list` as a Go bool (node-vault sends list=1, the CLI list=true). */
function wantsList(ctx: Context): boolean {
  if (ctx.method === 'LIST') return true;
  const v = queryOne(ctx, 'list');
  return v !== undefined && /^(1|t|true)$/i.test(v);
}

/** The folder or secret named after `/v1/secret/metadata`, without its slashes ('' for the root). */
function metadataTarget(ctx: Context): string {
  const raw = ctx.path.slice(VAULT_METADATA.length).replace(/^\/|\/$/g, '');
  if (raw.includes('%')) throw new BadRequestError('path.encoded', 'percent-encoded characters are not allowed in a secret path');
  return raw === '' ? '' : parseSecretPath(raw);
}

/**
 * Pages of the native listing one level takes at most: it reads every path
 * below `dir`, and a CI token must not make this port scan a whole store.
 */
const MAX_LIST_PAGES = 20;

/** The names one level under `dir`, as Vault lists them: sorted, folders with a trailing slash. */
async function listLevel(secrets: VaultKvDeps['secrets'], dir: string, listGlobs: string[]): Promise<string[]> {
  const prefix = dir === '' ? '' : `${dir}/`;
  const keys = new Set<string>();
  let cursor: string | null = null;
  let pages = 0;
  const scope = listScope(listGlobs);
  do {
    if (++pages > MAX_LIST_PAGES) throw new BadRequestError('list.size', `too many secrets under ${prefix || 'the root'} to list here: list a deeper folder, or use GET /v1/secrets?prefix=`);
    const page = await secrets.list({ prefix, limit: 1000, cursor, scope });
    for (const p of page.paths) {
      const rest = p.slice(prefix.length);
      const slash = rest.indexOf('/');
      keys.add(slash < 0 ? rest : rest.slice(0, slash + 1));
    }
    cursor = page.next_cursor;
  } while (cursor);
  return [...keys].sort();
}

export function vaultKvRoutes(router: Router, deps: VaultKvDeps): void {
  const preflight = (ctx: Context) => {
    const rest = ctx.path.slice(VAULT_PREFLIGHTS.find((p) => ctx.path.startsWith(p))!.length);
    const mount = rest.split('/')[0]!;
    noteAudit(ctx, { action: 'mount.read' });
    // Vault answers 403 for a mount that does not exist, as for one the token may not use.
    if (mount !== VAULT_MOUNT || deps.principal(ctx).grants.length === 0) {
      throw new ForbiddenError(`preflight capability check returned 403, please ensure client's policies grant access to path "${mount}/"`);
    }
    ctx.body = {
      ...deps.envelope(ctx),
      auth: null,
      data: {
        type: 'kv',
        path: `${VAULT_MOUNT}/`,
        options: { version: '2' },
        description: 'Nexus secrets',
        accessor: 'kv_nexus',
        local: false,
        seal_wrap: false,
        external_entropy_access: false,
        config: { default_lease_ttl: 0, max_lease_ttl: 0, force_no_cache: false },
      },
    } satisfies VaultMountResponse;
  };
  for (const p of VAULT_PREFLIGHTS) {
    router.get(`${p}${VAULT_MOUNT}/{*rest}`, deps.authenticate, preflight);
    // The mount alone (`vault kv list secret` asks for .../secret), or another mount (403).
    router.get(`${p}{*rest}`, deps.authenticate, preflight);
  }

  const list = async (ctx: Context) => {
    const dir = metadataTarget(ctx);
    noteAudit(ctx, { action: 'list', path: dir });
    const { grants } = deps.principal(ctx);
    if (!grants.some((g) => g.permissions.includes('list'))) throw new ForbiddenError('permission denied: list');
    const keys = await listLevel(deps.secrets, dir, grants.filter((g) => g.permissions.includes('list')).map((g) => g.path));
    if (keys.length === 0) {
      // Vault's "nothing here": the CLI reads it as no entries, not as a failure.
      ctx.status = 404;
      ctx.body = { errors: [] };
      return;
    }
    ctx.body = { ...deps.envelope(ctx), auth: null, data: { keys } } satisfies VaultKeyList;
  };

  const metadata = async (ctx: Context) => {
    if (wantsList(ctx)) return list(ctx);
    const path = metadataTarget(ctx);
    noteAudit(ctx, { action: 'metadata', path });
    if (path === '') throw new NotFoundError('a metadata read names a secret; add ?list=true to list');
    if (!grantAllows(deps.principal(ctx).grants, 'read', path)) throw new ForbiddenError(`permission denied: read on ${path}`);
    const md = await deps.secrets.metadata(path);
    const versions = md.versions;
    ctx.body = {
      ...deps.envelope(ctx),
      auth: null,
      data: {
        cas_required: false,
        created_time: versions[0]?.created_at ?? '',
        updated_time: versions.at(-1)?.created_at ?? '',
        current_version: md.current_version,
        oldest_version: versions[0]?.version ?? 0,
        max_versions: 0,
        delete_version_after: '0s',
        custom_metadata: null,
        versions: Object.fromEntries(versions.map((v) => [String(v.version), { created_time: v.created_at, deletion_time: v.deleted_at ?? '', destroyed: v.destroyed }])),
      },
    } satisfies VaultKvMetadata;
  };
  // The root (`vault kv list secret`) has no trailing path; LIST is Vault's own verb for GET ?list=true.
  router.get(VAULT_METADATA, deps.authenticate, metadata);
  router.get(`${VAULT_METADATA}/{*rest}`, deps.authenticate, metadata);
  router.register(VAULT_METADATA, ['LIST'], [deps.authenticate, list]);
  router.register(`${VAULT_METADATA}/{*rest}`, ['LIST'], [deps.authenticate, list]);
}
