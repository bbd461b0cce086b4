import { PERMISSIONS, type Permission } from '../auth/principal.js';
import { BadRequestError, ForbiddenError, NotFoundError } from '../errors.js';
import type { Storage } from '../storage/storage.js';
import type { PolicyEngine } from './engine.js';
import { parsePathGlob, parseSpiffeGlob } from './glob.js';
import { BUILTIN_ADMIN_POLICY, type Policy } from './types.js';

const NAME = /^[A-Za-z0-9._-]{1,128}$/;

export function parsePolicyName(raw: unknown): string {
  if (typeof raw !== 'string' || !NAME.test(raw)) throw new BadRequestError('name', 'policy name must be 1 to 128 of A-Z a-z 0-9 . _ -');
  return raw;
}

export function parsePermissions(raw: unknown, allowed: readonly Permission[] = PERMISSIONS): Permission[] {
  if (!Array.isArray(raw) || raw.length === 0) throw new BadRequestError('permissions', 'permissions must be a non-empty list');
  for (const p of raw) {
    if (!allowed.includes(p as Permission)) throw new BadRequestError('permissions', `unknown permission ${JSON.stringify(p)}; use ${allowed.join(', ')}`);
  }
  return [...new Set(raw as Permission[])];
}

/** Admin CRUD over SPIFFE policies; keeps the engine's cache in step. */
export class PolicyService {
  constructor(
    private readonly storage: Storage,
    private readonly engine: PolicyEngine,
  ) {}

  async put(rawName: string, body: unknown): Promise<{ policy: Policy; created: boolean }> {
    const name = parsePolicyName(rawName);
    if (name === BUILTIN_ADMIN_POLICY) throw new ForbiddenError('the built-in admin policy cannot be changed');
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequestError('body', 'body must be a JSON object');
    const b = body as Record<string, unknown>;
    for (const k of Object.keys(b)) {
      if (!['spiffe_id', 'paths', 'permissions', 'name'].includes(k)) throw new BadRequestError('body', `unknown field ${JSON.stringify(k)}`);
    }
    const spiffe_id = parseSpiffeGlob(b.spiffe_id);
    if (!Array.isArray(b.paths) || b.paths.length === 0 || b.paths.length > 100) throw new BadRequestError('paths', 'paths must be a list of 1 to 100 globs');
    const paths = b.paths.map((p) => parsePathGlob(p));
    const permissions = parsePermissions(b.permissions);
    const { policy, created } = await this.storage.tx(async (r) => {
      const existed = (await r.policies.get(name)) !== undefined;
      await r.policies.upsert({ name, spiffe_id, paths, permissions }, new Date().toISOString());
      return { policy: (await r.policies.get(name))!, created: !existed };
    });
    await this.engine.load();
    return { policy, created };
  }

  async get(rawName: string): Promise<Policy> {
    const name = parsePolicyName(rawName);
    if (name === BUILTIN_ADMIN_POLICY) return this.engine.builtinAdmin();
    const p = await this.storage.policies.get(name);
    if (!p) throw new NotFoundError(`policy ${name} not found`);
    return p;
  }

  async list(): Promise<Policy[]> {
    return [this.engine.builtinAdmin(), ...(await this.storage.policies.all())];
  }

  async delete(rawName: string): Promise<void> {
    const name = parsePolicyName(rawName);
    if (name === BUILTIN_ADMIN_POLICY) throw new ForbiddenError('the built-in admin policy cannot be deleted');
    if (!(await this.storage.policies.delete(name))) throw new NotFoundError(`policy ${name} not found`);
    await this.engine.load();
  }
}
