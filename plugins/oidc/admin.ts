import Router from '@koa/router';
import type { AdminRouteDeps } from '../../nexus/auth/plugin.js';
import { BadRequestError, ConflictError, NotFoundError } from '../../nexus/errors.js';
import { changeAudited, noteObject } from '../../nexus/http/audit.js';
import { readJson } from '../../nexus/http/body.js';
import { parseInput } from '../../nexus/schema.js';
import { requireAdmin } from '../../nexus/http/policy-routes.js';
import type { Logger } from '../../nexus/log.js';
import { parseName } from '../../nexus/policy/schema.js';
import type { ConfigTopic } from '../../nexus/storage/changes.js';
import { roleLint } from './presets.js';
import type { RoleTester } from './role-test.js';
import { tenantRefusal } from './roles.js';
import { IssuerRevokeInput, parseIssuerRequest, parseRole, withoutWebhookSecret } from './schema.js';
import type { OidcStore, OidcTables } from './store.js';
import type { IssuerConfig, RoleConfig } from './types.js';
import type { WebhookSecrets } from './webhook-secrets.js';

/** One issuer URL, one issuer: the API and the config file apply the same rule. */
export function assertUniqueIssuerUrl(existing: Array<{ name: string; issuer: string }>, cfg: { name: string; issuer: string }): void {
  const clash = existing.find((i) => i.issuer === cfg.issuer && i.name !== cfg.name);
  if (clash) throw new ConflictError(`issuer ${cfg.issuer} is already configured as ${clash.name}`);
}

/**
 * The rules every issuer and role change obeys, whoever makes it: the admin
 * API (`owner` null) or the config file (`owner` its path). Bound to one
 * transaction's tables; the checks read the state the change leaves, so a
 * config file that changes several objects is held to them as a whole, and a
 * refusal rolls all of it back.
 */
export class OidcRules {
  constructor(
    readonly t: OidcTables,
    private readonly owner: string | null,
  ) {}

  /** An object is changed only by whoever made it: the API, or a config file (which is re-applied at every start). */
  async assertOwned(kind: 'issuer' | 'role', name: string): Promise<void> {
    const file = await this.t.managedBy(kind, name);
    if (file === undefined) return;
    if (this.owner === null && file !== null) {
      throw new ConflictError(`${kind} ${name} is managed by the config file ${file}; change it there (it is re-applied at every start)`);
    }
    if (this.owner !== null && file === null) {
      throw new ConflictError(`an ${kind} named ${name} was created through the API; the config file cannot take it over (delete it through the API, or rename it in ${this.owner})`);
    }
  }

  async putIssuer(cfg: IssuerConfig): Promise<boolean> {
    await this.assertOwned('issuer', cfg.name);
    return this.t.putIssuer(cfg, this.owner);
  }

  async assertUniqueUrl(cfg: IssuerConfig): Promise<void> {
    assertUniqueIssuerUrl(await this.t.issuers(), cfg);
  }

  /** No role of the issuer, whoever made it, may be left binding none of its tenant claims. */
  async assertNoStrandedRole(cfg: IssuerConfig): Promise<void> {
    const stranded = (await this.t.roles()).filter((r) => r.issuer === cfg.name && tenantRefusal(r, cfg));
    if (stranded.length) {
      throw new ConflictError(`role(s) ${stranded.map((r) => r.name).join(', ')} bind none of the tenant claims ${cfg.tenant_claims.join(', ')}; change them first`);
    }
  }

  async deleteIssuer(name: string): Promise<void> {
    await this.assertOwned('issuer', name);
    const roles = await this.t.rolesOfIssuer(name);
    if (roles.length) throw new ConflictError(`issuer ${name} is used by role(s) ${roles.join(', ')}; delete them first`);
    if (!(await this.t.deleteIssuer(name))) throw new NotFoundError(`issuer ${name} not found`);
  }

  async putRole(cfg: RoleConfig): Promise<boolean> {
    await this.assertOwned('role', cfg.name);
    return this.t.putRole(cfg, this.owner);
  }

  async assertRoleIssuer(cfg: RoleConfig): Promise<void> {
    if (!(await this.t.issuer(cfg.issuer))) throw new BadRequestError('issuer', `issuer ${cfg.issuer} is not configured`);
  }

  async assertRoleBindsTenant(cfg: RoleConfig): Promise<void> {
    const issuer = await this.t.issuer(cfg.issuer);
    const why = issuer && tenantRefusal(cfg, issuer);
    if (why) throw new BadRequestError('bound_claims', why);
  }

  async deleteRole(name: string): Promise<void> {
    await this.assertOwned('role', name);
    if (!(await this.t.deleteRole(name))) throw new NotFoundError(`role ${name} not found`);
  }
}

/**
 * Service layer for issuer and role admin; `reload` refreshes the plugin's
 * caches, `probe` checks an issuer's discovery and keys (a BadRequestError
 * naming what failed).
 */
export class OidcAdmin {
  constructor(
    private readonly store: OidcStore,
    private readonly reload: () => Promise<void>,
    private readonly log: Logger,
    private readonly probe: (cfg: IssuerConfig) => Promise<void>,
    private readonly webhookSecrets: Pick<WebhookSecrets, 'seal'>,
  ) {}

  /** Checked, written and versioned in one transaction, then this replica's caches reloaded. */
  private async change<T>(topics: readonly ConfigTopic[], fn: (rules: OidcRules) => Promise<T>): Promise<T> {
    const out = await this.store.change(topics, (t) => fn(new OidcRules(t, null)));
    try {
      await this.reload();
    } catch (err) {
      // Committed: answered as such; the version poll reloads until it works.
      this.log.warn({ err }, 'could not reload OIDC issuers and roles after a committed change; the version poll retries');
    }
    return out;
  }

  async putIssuer(name: string, body: unknown): Promise<{ issuer: IssuerConfig; created: boolean }> {
    const { issuer: cfg, webhookSecret, verify } = parseIssuerRequest(name, body);
    // Before the transaction: no row is locked while an IdP is asked, or while a data key is read to seal.
    if (verify) await this.probe(cfg);
    const sealed = await this.webhookSecrets.seal(cfg.name, webhookSecret);
    return this.change(['oidc'], async (rules) => {
      const created = await rules.putIssuer(cfg);
      await rules.t.setWebhookSecret(cfg.name, sealed);
      await rules.assertUniqueUrl(cfg);
      await rules.assertNoStrandedRole(cfg);
      return { issuer: (await rules.t.issuer(cfg.name))!, created };
    });
  }

  async getIssuer(name: string): Promise<IssuerConfig> {
    const i = await this.store.issuer(parseName(name));
    if (!i) throw new NotFoundError(`issuer ${name} not found`);
    return i;
  }

  async deleteIssuer(name: string): Promise<void> {
    const n = parseName(name);
    await this.change(['oidc'], (rules) => rules.deleteIssuer(n));
  }

  /** `warnings`: the lint of role writes (never a refusal), e.g. a tenant bound only by a mutable name. */
  async putRole(name: string, body: unknown): Promise<{ role: RoleConfig; created: boolean; warnings: string[] }> {
    const cfg = parseRole(name, body);
    return this.change(['oidc'], async (rules) => {
      // Before the write: the role's issuer must exist for its row to refer to it.
      await rules.assertOwned('role', cfg.name);
      await rules.assertRoleIssuer(cfg);
      const created = await rules.putRole(cfg);
      await rules.assertRoleBindsTenant(cfg);
      return { role: (await rules.t.role(cfg.name))!, created, warnings: roleLint(cfg, (await rules.t.issuer(cfg.issuer))!) };
    });
  }

  async getRole(name: string): Promise<RoleConfig> {
    const r = await this.store.role(parseName(name));
    if (!r) throw new NotFoundError(`role ${name} not found`);
    return r;
  }

  async deleteRole(name: string): Promise<void> {
    const n = parseName(name);
    await this.change(['oidc', 'tokens'], (rules) => rules.deleteRole(n));
  }

  async revokeTokens(name: string): Promise<number> {
    await this.getRole(name);
    return this.store.revokeRole(name);
  }

  /** Every exchanged token of an issuer (or of one role of it): the answer to a leaked IdP key, without waiting for its rotation. */
  async revokeIssuerTokens(name: string, role: string | undefined): Promise<number> {
    await this.getIssuer(name);
    return this.store.revokeIssuer(name, role ?? null);
  }
}

/**
 * `/issuers/NAME:revoke-tokens` and `/roles/NAME:revoke-tokens` share the
 * shape of `/.../:name`: the name before the verb, or 404 for anything else.
 */
function revokeTarget(param: string): string {
  const m = /^([A-Za-z0-9._-]{1,128}):revoke-tokens$/.exec(param);
  if (!m) throw new NotFoundError('no such route');
  return m[1]!;
}

/** Issuer and role admin on the mTLS port (admin permission). */
export function oidcAdminRoutes(admin: OidcAdmin, store: OidcStore, tester: RoleTester, deps: AdminRouteDeps): Router {
  const router = new Router({ prefix: '/v1/oidc' });
  router.use(requireAdmin(deps));
  router.get('/issuers', async (ctx) => {
    noteObject(ctx, 'oidc.issuer', 'list');
    ctx.body = { issuers: await store.issuers() };
  });
  router.get('/issuers/:name', async (ctx) => {
    noteObject(ctx, 'oidc.issuer', 'read', ctx.params.name!);
    ctx.body = await admin.getIssuer(ctx.params.name!);
  });
  router.put('/issuers/:name', async (ctx) => {
    const body = await readJson(ctx);
    // The digest covers whether a webhook secret was sent, never the secret.
    noteObject(ctx, 'oidc.issuer', 'put', ctx.params.name!, withoutWebhookSecret(body));
    const r = await changeAudited(ctx, () => admin.putIssuer(ctx.params.name!, body));
    ctx.status = r.created ? 201 : 200;
    ctx.body = r.issuer;
  });
  router.post('/issuers/:name', async (ctx) => {
    const name = revokeTarget(ctx.params.name!);
    const { role } = parseInput(IssuerRevokeInput, await readJson(ctx, undefined, { empty: {} }));
    noteObject(ctx, 'oidc.issuer', 'revoke-tokens', name);
    const revoked = await changeAudited(ctx, () => admin.revokeIssuerTokens(name, role));
    ctx.body = { issuer: name, ...(role ? { role } : {}), revoked };
  });
  router.delete('/issuers/:name', async (ctx) => {
    noteObject(ctx, 'oidc.issuer', 'delete', ctx.params.name!);
    await changeAudited(ctx, () => admin.deleteIssuer(ctx.params.name!));
    ctx.status = 204;
  });
  // A dry run: reads only, and the sample token is never recorded (only that a test ran).
  router.post('/roles\\:test', async (ctx) => {
    noteObject(ctx, 'oidc.role', 'test');
    ctx.body = await tester.test(await readJson(ctx));
  });
  router.get('/roles', async (ctx) => {
    noteObject(ctx, 'oidc.role', 'list');
    ctx.body = { roles: await store.roles() };
  });
  router.post('/roles/:name', async (ctx) => {
    const name = revokeTarget(ctx.params.name!);
    noteObject(ctx, 'oidc.role', 'revoke-tokens', name);
    ctx.body = { role: name, revoked: await changeAudited(ctx, () => admin.revokeTokens(name)) };
  });
  router.get('/roles/:name', async (ctx) => {
    noteObject(ctx, 'oidc.role', 'read', ctx.params.name!);
    ctx.body = await admin.getRole(ctx.params.name!);
  });
  router.put('/roles/:name', async (ctx) => {
    const body = await readJson(ctx);
    noteObject(ctx, 'oidc.role', 'put', ctx.params.name!, body);
    const r = await changeAudited(ctx, () => admin.putRole(ctx.params.name!, body));
    ctx.status = r.created ? 201 : 200;
    ctx.body = r.warnings.length ? { ...r.role, warnings: r.warnings } : r.role;
  });
  router.delete('/roles/:name', async (ctx) => {
    noteObject(ctx, 'oidc.role', 'delete', ctx.params.name!);
    await changeAudited(ctx, () => admin.deleteRole(ctx.params.name!));
    ctx.status = 204;
  });
  return router;
}
