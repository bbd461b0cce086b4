// How the action's steps (main and post) trust Nexus: from the inputs `url`,
// `ca` and `server-spiffe-id`, which the runner gives both steps alike.
import * as core from '@actions/core';
import { ServerIdConfigError } from '../../nexus/spiffe/server-id.js';
import { readCa, type TlsSetup } from './client.js';
import { caTrust } from './server-trust.js';

export function actionServer(): { url: string; tls: TlsSetup } {
  const url = core.getInput('url', { required: true });
  const ca = readCa(core.getInput('ca'));
  // With a CA, the server is authorized by SPIFFE ID when that CA is a SPIFFE bundle (server-trust.ts).
  try {
    return { url, tls: ca ? caTrust(ca, url, core.getInput('server-spiffe-id') || process.env.NEXUS_SERVER_SPIFFE_ID) : {} };
  } catch (err) {
    if (err instanceof ServerIdConfigError) throw new Error(`${err.message} (the input server-spiffe-id, by default $NEXUS_SERVER_SPIFFE_ID)`);
    throw err;
  }
}

/** The name under which the main step leaves the token to the post step (core.saveState: never a log line or an output). */
export const TOKEN_STATE = 'nexus-token';
