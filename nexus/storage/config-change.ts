import type { ConfigTopic } from './changes.js';
import type { Repos, Storage } from './storage.js';

/**
 * A configuration change: `fn` and the bump of its topics' versions in one
 * transaction (a throw inside rolls back both), then the notices. Once this
 * resolves the change is committed, and every process will hear of it within
 * CONFIG_POLL_MS even if a notice is lost: callers answer success whatever
 * happens after, such as a local reload that fails.
 */
export async function commitConfigChange<T>(storage: Pick<Storage, 'tx' | 'publish'>, topics: readonly ConfigTopic[], fn: (r: Repos) => Promise<T>): Promise<T> {
  const out = await storage.tx(async (r) => {
    const result = await fn(r);
    for (const t of topics) await r.configVersions.bump(t);
    return result;
  });
  for (const t of topics) await storage.publish(t);
  return out;
}
