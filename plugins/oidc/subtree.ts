import type { Context } from 'koa';
import { auditReads, noteAudit } from '../../nexus/http/audit.js';
import { listRequest } from '../../nexus/http/secrets-routes.js';
import { MAX_DATA_PAGE, type SecretDataPage } from '../../nexus/secrets/schema.js';
import type { SecretsService } from '../../nexus/secrets/service.js';

/**
 * `GET /v1/secrets?prefix=P&include=data`: a page of the subtree with each
 * secret's latest data, so a CI job pays one round trip per page rather than
 * one per secret. The scope is what the caller may read (its read globs), not
 * what it may list: a job learns no path it could not learn by reading it,
 * and a role that grants read alone (the usual CI role) can fetch its tree.
 * Every secret handed out gets its own read record, as a read of it would.
 */
export async function subtreeWithData(ctx: Context, secrets: SecretsService, mayRead: boolean, readGlobs: string[]): Promise<SecretDataPage> {
  const options = listRequest(ctx, mayRead, readGlobs, 'read');
  noteAudit(ctx, { action: 'list.data' });
  const page = await secrets.listData({ ...options, limit: Math.min(options.limit ?? MAX_DATA_PAGE, MAX_DATA_PAGE) });
  await auditReads(ctx, page.secrets.map((s) => ({ action: 'read', path: s.path, version: s.version })));
  return page;
}
