import { randomBytes } from 'node:crypto';
import type { AuditEntry, AuditTrail } from '../../nexus/audit/trail.js';
import type { Config } from '../../nexus/config/index.js';
import { BadRequestError, ConfigError, ConflictError, NexusError, NotFoundError, StartupError } from '../../nexus/errors.js';
import { definitionDigest } from '../../nexus/http/audit.js';
import type { Logger } from '../../nexus/log.js';
import type { RequestSignals } from '../../nexus/signals/engine.js';
import type { Storage } from '../../nexus/storage/storage.js';
import { assertUniqueIssuerUrl, OidcRules } from './admin.js';
import { tenantRefusal } from './roles.js';
import { parseIssuer, parseRole, withoutWebhookSecret } from './schema.js';
import { OidcTables, type OidcStore } from './store.js';
import type { IssuerConfig, RoleConfig } from './types.js';
import type { WebhookSecrets } from './webhook-secrets.js';

export interface Seed {
  issuers: IssuerConfig[];
  /** Each declared issuer's webhook secret; null: none (the file is the whole truth for its issuers). */
  webhookSecrets: Map<string, string | null>;
  roles: RoleConfig[];
  /** Each object's definition as the file writes it (what its audit record digests, as the API digests a body). */
  bodies: { issuer: Record<string, unknown>; role: Record<string, unknown> };
}

/** A ConfigError naming `key` for a refusal by the rules; anything else as it is. */
function keyed<T>(key: string, fn: () => Promise<T>): Promise<T>;
function keyed<T>(key: string, fn: () => T): T;
function keyed<T>(key: string, fn: () => T | Promise<T>): T | Promise<T> {
  const rethrow = (err: unknown): never => {
    if (err instanceof BadRequestError || err instanceof ConflictError || err instanceof NotFoundError) throw new ConfigError(key, err.message);
    throw err;
  };
  try {
    const out = fn();
    return out instanceof Promise ? out.catch(rethrow) : out;
  } catch (err) {
    return rethrow(err);
  }
}

/**
 * Issuers and roles declared in NEXUS_CONFIG (oidc.issuers, oidc.roles),
 * checked on their own (nexus --check-config needs no database); a bad one
 * names its key. Checks against what the database holds run when it is applied.
 */
export function parseSeed(config: Config): Seed {
  const parsed = <T>(key: string, fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof BadRequestError) throw new ConfigError(`${key}.${err.rule}`, err.message);
      throw err;
    }
  };
  const issuers: IssuerConfig[] = [];
  const webhookSecrets = new Map<string, string | null>();
  for (const [name, body] of Object.entries(config.oidcSeed.issuers)) {
    const { issuer, webhookSecret } = parsed(`oidc.issuers.${name}`, () => parseIssuer(name, body));
    keyed(`oidc.issuers.${name}.issuer`, () => assertUniqueIssuerUrl(issuers, issuer));
    issuers.push(issuer);
    webhookSecrets.set(issuer.name, webhookSecret ?? null);
  }
  const byName = new Map(issuers.map((i) => [i.name, i]));
  const roles = Object.entries(config.oidcSeed.roles).map(([name, body]) => {
    const role = parsed(`oidc.roles.${name}`, () => parseRole(name, body));
    const issuer = byName.get(role.issuer);
    if (!issuer) throw new ConfigError(`oidc.roles.${name}.issuer`, `issuer ${role.issuer} is not declared under oidc.issuers`);
    const why = tenantRefusal(role, issuer);
    if (why) throw new ConfigError(`oidc.roles.${name}.bound_claims`, why);
    return role;
  });
  return { issuers, webhookSecrets, roles, bodies: { issuer: config.oidcSeed.issuers, role: config.oidcSeed.roles } };
}

type SeedChange = { kind: 'issuer'; verb: 'put'; cfg: IssuerConfig } | { kind: 'role'; verb: 'put'; cfg: RoleConfig } | { kind: 'issuer' | 'role'; verb: 'delete'; name: string };

const nameOf = (c: SeedChange) => (c.verb === 'put' ? c.cfg.name : c.name);
const idOf = (c: SeedChange) => `${c.kind} ${c.verb} ${nameOf(c)}`;

/** A definition without its timestamps, comparable whichever side it came from. */
function definition(o: IssuerConfig | RoleConfig): string {
  const { created_at: _c, updated_at: _u, ...rest } = o;
  return definitionDigest(rest);
}

/**
 * What applying the file changes now: each object it declares whose stored
 * definition or owner differs, then each file-managed object it no longer
 * declares (roles before issuers). An unchanged file plans nothing.
 */
async function planSeed(t: OidcTables, seed: Seed, file: string): Promise<SeedChange[]> {
  const changes: SeedChange[] = [];
  const stored = { issuer: new Map((await t.issuers()).map((i) => [i.name, definition(i)])), role: new Map((await t.roles()).map((r) => [r.name, definition(r)])) };
  for (const [kind, list] of [
    ['issuer', seed.issuers],
    ['role', seed.roles],
  ] as const) {
    for (const cfg of list) {
      if (stored[kind].get(cfg.name) === definition(cfg) && (await t.managedBy(kind, cfg.name)) === file) continue;
      changes.push({ kind, verb: 'put', cfg } as SeedChange);
    }
  }
  for (const kind of ['role', 'issuer'] as const) {
    const declared = new Set((kind === 'issuer' ? seed.issuers : seed.roles).map((o) => o.name));
    for (const name of stored[kind].keys()) {
      if (!declared.has(name) && (await t.managedBy(kind, name))) changes.push({ kind, verb: 'delete', name });
    }
  }
  return changes;
}

/**
 * Declarative config: what the file says is made so at every start, through
 * the rules the admin API applies (OidcRules), in one transaction: all of it
 * or nothing. Seeded objects are marked as managed by the file; one the file
 * no longer declares is removed. Objects created through the API are never
 * touched: a file that declares one of their names is refused. Every change
 * is recorded in the audit trail before it is committed (an unwritable trail
 * refuses the start), and its outcome after.
 */
export async function applySeed(storage: Storage, store: OidcStore, audit: AuditTrail, seed: Seed, file: string, log: Logger, secrets: WebhookSecrets, signals?: RequestSignals): Promise<void> {
  await applyDefinitions(storage, store, audit, seed, file, log, signals);
  await applyWebhookSecrets(storage, secrets, seed);
}

/**
 * The file's webhook secrets, after its issuers exist: each declared issuer's
 * secret stored (sealed) or removed. Not a configuration change (events read
 * the secret at use), and written only when it differs from the stored one.
 */
async function applyWebhookSecrets(storage: Storage, secrets: WebhookSecrets, seed: Seed): Promise<void> {
  const changes = new Map<string, Awaited<ReturnType<WebhookSecrets['seal']>>>();
  for (const [name, secret] of seed.webhookSecrets) {
    const stored = await secrets.open(name);
    const same = stored === null ? secret === null : secret !== null && stored.equals(Buffer.from(secret, 'utf8'));
    stored?.fill(0);
    if (!same) changes.set(name, await secrets.seal(name, secret));
  }
  if (changes.size === 0) return;
  await storage.tx(async (r) => {
    const t = new OidcTables(r);
    for (const [name, sealed] of changes) await t.setWebhookSecret(name, sealed);
  });
}

async function applyDefinitions(storage: Storage, store: OidcStore, audit: AuditTrail, seed: Seed, file: string, log: Logger, signals?: RequestSignals): Promise<void> {
  const planned = await planSeed(new OidcTables(storage), seed, file);
  if (planned.length === 0) {
    log.info({ file, issuers: seed.issuers.length, roles: seed.roles.length }, 'the OIDC issuers and roles in the config file are in effect; nothing to change');
    return;
  }
  const requestId = `seed_${randomBytes(9).toString('base64url')}`;
  const record = (c: SeedChange, phase: 'intent' | 'outcome', outcome: Pick<AuditEntry, 'decision' | 'status' | 'reason'> = { decision: 'allow' }) =>
    audit.record({
      request_id: requestId,
      port: 'script',
      principal: { config_file: file },
      action: `oidc.${c.kind}.${c.verb}`,
      object: { kind: `oidc.${c.kind}`, name: nameOf(c), ...(c.verb === 'put' ? { digest: definitionDigest(withoutWebhookSecret(seed.bodies[c.kind][c.cfg.name])) } : {}) },
      phase,
      ...outcome,
    });
  if (!(await Promise.all(planned.map((c) => record(c, 'intent')))).every(Boolean)) {
    throw new StartupError(`the audit trail cannot be written; refusing to apply ${file} unrecorded`);
  }
  const created = new Set<string>();
  const topics = planned.some((c) => c.kind === 'role' && c.verb === 'delete') ? (['oidc', 'tokens'] as const) : (['oidc'] as const);
  try {
    await store.change(topics, async (t) => {
      created.clear(); // the transaction may run again
      const changes = await planSeed(t, seed, file);
      const recorded = new Set(planned.map(idOf));
      const unrecorded = changes.find((c) => !recorded.has(idOf(c)));
      if (unrecorded) throw new StartupError(`the OIDC configuration changed while ${file} was being applied (${idOf(unrecorded)}); start again`);
      const rules = new OidcRules(t, file);
      // Writes in an order the issuer references allow; the rules then judge the state they leave.
      for (const c of changes) {
        if (c.verb === 'put' && c.kind === 'issuer' && (await keyed(`oidc.issuers.${c.cfg.name}`, () => rules.putIssuer(c.cfg)))) created.add(idOf(c));
      }
      for (const c of changes) {
        if (c.verb !== 'put' || c.kind !== 'role') continue;
        const key = `oidc.roles.${c.cfg.name}`;
        await keyed(`${key}.issuer`, () => rules.assertRoleIssuer(c.cfg));
        if (await keyed(key, () => rules.putRole(c.cfg))) created.add(idOf(c));
      }
      for (const c of changes) if (c.verb === 'delete' && c.kind === 'role') await keyed(`oidc.roles.${c.name}`, () => rules.deleteRole(c.name));
      for (const c of changes) {
        if (c.verb !== 'delete' || c.kind !== 'issuer') continue;
        const users = await t.rolesOfIssuer(c.name);
        if (users.length) throw new ConfigError(`oidc.issuers.${c.name}`, `removed from ${file}, but role(s) ${users.join(', ')} created through the API still use issuer ${c.name}; delete them first`);
        await keyed(`oidc.issuers.${c.name}`, () => rules.deleteIssuer(c.name));
      }
      for (const c of changes) {
        if (c.verb !== 'put') continue;
        if (c.kind === 'issuer') {
          await keyed(`oidc.issuers.${c.cfg.name}.issuer`, () => rules.assertUniqueUrl(c.cfg));
          await keyed(`oidc.issuers.${c.cfg.name}.tenant_claims`, () => rules.assertNoStrandedRole(c.cfg));
        } else {
          await keyed(`oidc.roles.${c.cfg.name}.bound_claims`, () => rules.assertRoleBindsTenant(c.cfg));
        }
      }
    });
  } catch (err) {
    const reason = err instanceof NexusError ? `${err.code}: ${err.message}` : 'internal error';
    await Promise.all(planned.map((c) => record(c, 'outcome', { decision: 'error', reason })));
    throw err;
  }
  // Committed: outcomes are best effort, as an API change's are.
  await Promise.all(planned.map((c) => record(c, 'outcome', { decision: 'allow', status: c.verb === 'delete' ? 204 : created.has(idOf(c)) ? 201 : 200 })));
  for (const c of planned) signals?.engine.configChanged({ port: 'script', principal: `config file ${file}`, address: '', kind: `oidc.${c.kind}`, verb: c.verb, name: nameOf(c) });
  log.info({ file, issuers: seed.issuers.length, roles: seed.roles.length, changed: planned.map(idOf) }, 'applied OIDC issuers and roles from the config file');
}
