// The action's post step (action.yml `post:`, `post-if: always()`): at the
// job's end, whatever its outcome, gives back the token the main step kept
// for database credentials; the server ends their leases with it. Bundled
// into scripts/ci/dist/action-post.mjs by `npm run build:ci`.
import * as core from '@actions/core';
import { actionServer, TOKEN_STATE } from './action-trust.js';
import { retryInputs } from './action-retry.js';
import { giveBack, tokenId } from './fetch.js';

async function run(): Promise<void> {
  // Nothing saved: the main step gave the token back itself, failed (and gave it back), or was told revoke: false.
  const token = core.getState(TOKEN_STATE);
  if (!token) return;
  core.setSecret(token);
  const { url, tls } = actionServer();
  const id = tokenId(token);
  // The main step's retry inputs hold here too (the runner passes the same inputs); one log line per retry.
  const g = await giveBack(url, tls, token, { ...retryInputs(), log: (line: string) => core.info(`nexus: ${line}`) });
  if (g.outcome === 'revoked') core.info(`nexus: revoked the job's token ${id} and its leases`);
  else if (g.outcome === 'gone') core.info(`nexus: the job's token ${id} was already revoked or expired`);
  // A warning, not a failure: the token and its leases still end at its TTL, and the job's outcome is the job's.
  else core.warning(`nexus: ${g.warning}`);
}

run().catch((err: unknown) => core.warning(`nexus: ${err instanceof Error ? err.message : String(err)}`));
