import { ForbiddenError, NotFoundError } from '../errors.js';
import type { Logger } from '../log.js';
import { parseInput } from '../schema.js';
import { commitConfigChange } from '../storage/config-change.js';
import type { Storage } from '../storage/storage.js';
import type { PolicyEngine } from './engine.js';
import { parseName, PolicyInput } from './schema.js';
import { BUILTIN_ADMIN_POLICY, type Policy } from './types.js';

/** Admin CRUD over SPIFFE policies; keeps the engine's cache in step. */
export class PolicyService {
  constructor(
    private readonly storage: Storage,
    private readonly engine: PolicyEngine,
    private readonly log: Logger,
  ) {}

  /**
   * After a commit, so the caller's next request sees its change here. A
   * failure is logged, not answered: the change is committed, and the version
   * poll reloads until it works.
   */
  private async reload(): Promise<void> {
    try {
      await this.engine.load();
    } catch (err) {
      this.log.warn({ err }, 'could not reload policies after a committed change; the version poll retries');
    }
  }

  async put(rawName: string, body: unknown): Promise<{ policy: Policy; created: boolean }> {
    const name = parseName(rawName);
    if (name === BUILTIN_ADMIN_POLICY) throw new ForbiddenError('the built-in admin policy cannot be changed');
    const { spiffe_id, paths, permissions } = parseInput(PolicyInput, body);
    const out = await commitConfigChange(this.storage, ['policies'], async (r) => {
      const existed = (await r.policies.get(name)) !== undefined;
      await r.policies.upsert({ name, spiffe_id, paths, permissions }, new Date().toISOString());
      return { policy: (await r.policies.get(name))!, created: !existed };
    });
    await this.reload();
    return out;
  }

  async get(rawName: string): Promise<Policy> {
    const name = parseName(rawName);
    if (name === BUILTIN_ADMIN_POLICY) return this.engine.builtinAdmin();
    const p = await this.storage.policies.get(name);
    if (!p) throw new NotFoundError(`policy ${name} not found`);
    return p;
  }

  async list(): Promise<Policy[]> {
    return [this.engine.builtinAdmin(), ...(await this.storage.policies.all())];
  }

  async delete(rawName: string): Promise<void> {
    const name = parseName(rawName);
    if (name === BUILTIN_ADMIN_POLICY) throw new ForbiddenError('the built-in admin policy cannot be deleted');
    await commitConfigChange(this.storage, ['policies'], async (r) => {
      if (!(await r.policies.delete(name))) throw new NotFoundError(`policy ${name} not found`);
    });
    await this.reload();
  }
}
