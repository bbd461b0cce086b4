// The GitHub Action (action.yml): the job's OIDC token -> Nexus -> masked
// step outputs and environment variables. Bundled by `npm run build:ci` into
// scripts/ci/dist/action.mjs, which action.yml runs (no npm install at job time).
import * as core from '@actions/core';
import { ServerIdConfigError } from '../../nexus/spiffe/server-id.js';
import { readCa, type TlsSetup } from './client.js';
import { fetchSecrets, maskable } from './fetch.js';
import { caTrust } from './server-trust.js';
import { parseSpecs } from './spec.js';

async function run(): Promise<void> {
  const url = core.getInput('url', { required: true });
  const audience = core.getInput('audience', { required: true });
  const role = core.getInput('role') || undefined;
  // Empty (an older runner, or a hand-written call) means the declared default.
  const exportEnv = core.getInput('export-env') === '' ? true : core.getBooleanInput('export-env');
  const specs = parseSpecs([core.getInput('secrets', { required: true })]);
  const ca = readCa(core.getInput('ca'));
  // With a CA, the server is authorized by SPIFFE ID when that CA is a SPIFFE bundle (server-trust.ts).
  let tls: TlsSetup = {};
  try {
    if (ca) tls = caTrust(ca, url, core.getInput('server-spiffe-id') || process.env.NEXUS_SERVER_SPIFFE_ID);
  } catch (err) {
    if (err instanceof ServerIdConfigError) throw new Error(`${err.message} (the input server-spiffe-id, by default $NEXUS_SERVER_SPIFFE_ID)`);
    throw err;
  }
  // getIDToken masks the JWT itself.
  const jwt = await core.getIDToken(audience);
  // Revoked right after the read unless `revoke: false`: nothing later in the job uses the token.
  const revoke = core.getInput('revoke') === '' ? true : core.getBooleanInput('revoke');
  const { values, token, warning } = await fetchSecrets({ url, tls, jwt, role, specs, keepToken: !revoke });
  if (token) core.setSecret(token);
  if (warning) core.warning(`nexus: ${warning}`);
  // Masked before anything else is printed or written.
  for (const m of maskable(values.map((v) => v.value))) core.setSecret(m);
  for (const v of values) {
    core.setOutput(v.name, v.value);
    if (exportEnv) core.exportVariable(v.name, v.value);
  }
  core.info(`nexus: ${values.length} value(s) from ${new Set(values.map((v) => v.path)).size} secret(s): ${values.map((v) => v.name).join(', ')}${exportEnv ? ' (exported to the environment)' : ' (step outputs only)'}`);
}

run().catch((err: unknown) => core.setFailed(`nexus: ${err instanceof Error ? err.message : String(err)}`));
