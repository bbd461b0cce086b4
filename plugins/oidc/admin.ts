import Router from '@koa/router';
import type { AdminRouteDeps } from '../../nexus/auth/plugin.js';
import { BadRequestError, ConflictError, NotFoundError } from '../../nexus/errors.js';
import { changeAudited, noteObject } from '../../nexus/http/audit.js';
import { readJson } from '../../nexus/http/body.js';
import { requireAdmin } from '../../nexus/http/policy-routes.js';
import { parseName } from '../../nexus/policy/schema.js';
import { tenantRefusal } from './roles.js';
import { parseIssuer, parseRole } from './schema.js';
import type { OidcStore } from './store.js';
import type { IssuerConfig, RoleConfig } from './types.js';

/** One issuer URL, one issuer: the API and the config file apply the same rule. */
export function assertUniqueIssuerUrl(existing: Array<{ name: string; issuer: string }>, cfg: { name: string; issuer: string }): void {
  const clash = existing.find((i) => i.issuer === cfg.issuer && i.name !== cfg.name);
  if (clash) throw new ConflictError(`issuer ${cfg.issuer} is already configured as ${clash.name}`);
}

/** Service layer for issuer and role admin; `changed` refreshes the plugin's caches. */
export class OidcAdmin {
  constructor(
    private readonly store: OidcStore,
    private readonly changed: () => Promise<void>,
  ) {}

  /** Objects declared in the config file are changed there, not through the API. */
  private async assertNotManaged(kind: 'issuer' | 'role', name: string): Promise<void> {
    const file = await this.store.managedBy(kind, name);
    if (file) throw new ConflictError(`${kind} ${name} is managed by the config file ${file}; change it there (it is re-applied at every start)`);
  }

  async putIssuer(name: string, body: unknown): Promise<{ issuer: IssuerConfig; created: boolean }> {
    const cfg = parseIssuer(name, body);
    await this.assertNotManaged('issuer', cfg.name);
    assertUniqueIssuerUrl(await this.store.issuers(), cfg);
    const stranded = (await this.store.roles()).filter((r) => r.issuer === cfg.name && tenantRefusal(r, cfg));
    if (stranded.length) {
      throw new ConflictError(`role(s) ${stranded.map((r) => r.name).join(', ')} bind none of the tenant claims ${cfg.tenant_claims.join(', ')}; change them first`);
    }
    const created = await this.store.putIssuer(cfg);
    await this.changed();
    return { issuer: (await this.store.issuer(cfg.name))!, created };
  }

  async getIssuer(name: string): Promise<IssuerConfig> {
    const i = await this.store.issuer(parseName(name));
    if (!i) throw new NotFoundError(`issuer ${name} not found`);
    return i;
  }

  async deleteIssuer(name: string): Promise<void> {
    const n = parseName(name);
    await this.assertNotManaged('issuer', n);
    const roles = await this.store.rolesOfIssuer(n);
    if (roles.length) throw new ConflictError(`issuer ${n} is used by role(s) ${roles.join(', ')}; delete them first`);
    if (!(await this.store.deleteIssuer(n))) throw new NotFoundError(`issuer ${n} not found`);
    await this.changed();
  }

  async putRole(name: string, body: unknown): Promise<{ role: RoleConfig; created: boolean }> {
    const cfg = parseRole(name, body);
    await this.assertNotManaged('role', cfg.name);
    const issuer = await this.store.issuer(cfg.issuer);
    if (!issuer) throw new BadRequestError('issuer', `issuer ${cfg.issuer} is not configured`);
    const why = tenantRefusal(cfg, issuer);
    if (why) throw new BadRequestError('bound_claims', why);
    const created = await this.store.putRole(cfg);
    await this.changed();
    return { role: (await this.store.role(cfg.name))!, created };
  }

  async getRole(name: string): Promise<RoleConfig> {
    const r = await this.store.role(parseName(name));
    if (!r) throw new NotFoundError(`role ${name} not found`);
    return r;
  }

  async deleteRole(name: string): Promise<void> {
    await this.assertNotManaged('role', parseName(name));
    if (!(await this.store.deleteRole(parseName(name)))) throw new NotFoundError(`role ${name} not found`);
    await this.changed();
  }

  async revokeTokens(name: string): Promise<number> {
    await this.getRole(name);
    return this.store.revokeRole(name);
  }
}

/** Issuer and role admin on the mTLS port (admin permission). */
export function oidcAdminRoutes(admin: OidcAdmin, store: OidcStore, deps: AdminRouteDeps): Router {
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
    noteObject(ctx, 'oidc.issuer', 'put', ctx.params.name!, body);
    const r = await changeAudited(ctx, () => admin.putIssuer(ctx.params.name!, body));
    ctx.status = r.created ? 201 : 200;
    ctx.body = r.issuer;
  });
  router.delete('/issuers/:name', async (ctx) => {
    noteObject(ctx, 'oidc.issuer', 'delete', ctx.params.name!);
    await changeAudited(ctx, () => admin.deleteIssuer(ctx.params.name!));
    ctx.status = 204;
  });
  router.get('/roles', async (ctx) => {
    noteObject(ctx, 'oidc.role', 'list');
    ctx.body = { roles: await store.roles() };
  });
  // `/roles/NAME:revoke-tokens` shares the shape of `/roles/:name`; tell them apart here.
  router.post('/roles/:name', async (ctx) => {
    const m = /^([A-Za-z0-9._-]{1,128}):revoke-tokens$/.exec(ctx.params.name!);
    if (!m) throw new NotFoundError('no such route');
    noteObject(ctx, 'oidc.role', 'revoke-tokens', m[1]!);
    ctx.body = { role: m[1], revoked: await changeAudited(ctx, () => admin.revokeTokens(m[1]!)) };
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
    ctx.body = r.role;
  });
  router.delete('/roles/:name', async (ctx) => {
    noteObject(ctx, 'oidc.role', 'delete', ctx.params.name!);
    await changeAudited(ctx, () => admin.deleteRole(ctx.params.name!));
    ctx.status = 204;
  });
  return router;
}
