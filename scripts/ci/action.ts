// The GitHub Action (action.yml): the job's OIDC token -> Nexus -> masked
// step outputs and environment variables. Bundled by `npm run build:ci` into
// scripts/ci/dist/action.mjs, which action.yml runs (no npm install at job time).
// Its post step (action-post.ts) gives back a token this step kept.
import * as core from '@actions/core';
import { actionServer, TOKEN_STATE } from './action-trust.js';
import { fetchSecrets, maskable } from './fetch.js';
import { getIDToken } from './id-token.js';
import { retryInputs } from './action-retry.js';
import { parseDbCreds, parseSpecs } from './spec.js';
import { trace } from './trace.js';

trace('modules loaded');

async function run(): Promise<void> {
  const audience = core.getInput('audience', { required: true });
  const role = core.getInput('role') || undefined;
  // Empty (an older runner, or a hand-written call) means the declared default.
  const exportEnv = core.getInput('export-env') === '' ? true : core.getBooleanInput('export-env');
  const revoke = core.getInput('revoke') === '' ? true : core.getBooleanInput('revoke');
  const dbCreds = parseDbCreds([core.getInput('db-creds')]);
  const specs = parseSpecs([core.getInput('secrets')], dbCreds.length > 0);
  const { url, tls } = actionServer();
  // One log line per retry (never the token): see retry.ts.
  const retry = { ...retryInputs(), log: (line: string) => core.info(`nexus: ${line}`) };
  // getIDToken masks the JWT itself.
  const jwt = await getIDToken(audience, retry);
  trace('ID token from the runner');
  // Static values need the token no longer than the read: it is given back at
  // once. Database credentials are leases of the token and end with it, so a
  // job that asks for them keeps it until the post step, at the job's end.
  const keep = !revoke || dbCreds.length > 0;
  const got = await fetchSecrets({ url, tls, jwt, role, specs, dbCreds, keepToken: keep, retry });
  trace('secrets fetched');
  if (got.token) {
    core.setSecret(got.token);
    if (revoke) core.saveState(TOKEN_STATE, got.token);
  }
  if (got.warning) core.warning(`nexus: ${got.warning}`);
  // Masked before anything else is printed or written.
  for (const m of maskable(got.values.map((v) => v.value))) core.setSecret(m);
  if (got.tokenId) core.setOutput('token-id', got.tokenId);
  if (got.leases.length) core.setOutput('lease-ids', got.leases.map((l) => l.lease_id).join('\n'));
  for (const v of got.values) {
    core.setOutput(v.name, v.value);
    if (exportEnv) core.exportVariable(v.name, v.value);
  }
  const secrets = got.values.filter((v) => !v.path.startsWith('db/creds/'));
  if (secrets.length) core.info(`nexus: ${secrets.length} value(s) from ${new Set(secrets.map((v) => v.path)).size} secret(s): ${secrets.map((v) => v.name).join(', ')}${exportEnv ? ' (exported to the environment)' : ' (step outputs only)'}`);
  for (const l of got.leases) core.info(`nexus: database credentials of role ${l.role}, lease ${l.lease_id} (${l.lease_duration} s)`);
  if (got.revoked) core.info(`nexus: revoked the job's token ${got.tokenId} (nothing later needs it)`);
  else if (got.token && revoke) core.info(`nexus: the job's token ${got.tokenId} and its leases are revoked by this action's post step, at the job's end`);
  else if (got.token) core.info(`nexus: the job's token ${got.tokenId} is kept to its TTL (revoke: false)`);
}

run()
  .catch((err: unknown) => core.setFailed(`nexus: ${err instanceof Error ? err.message : String(err)}`))
  .finally(() => {
    trace('outputs written');
    process.once('exit', () => trace('exit'));
  });
