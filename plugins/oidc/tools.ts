// GET /v1/tools/FILE on the OIDC port, no credentials: the committed client
// bundles, so a CI job fetches its client from the store it already trusts
// (same TLS, same CA) and pins it by hash, with no package registry and no
// name anyone could squat. The files are read once, when the port starts;
// their SHA-256 goes out as X-Content-SHA256 (hex) and as the ETag.
import Router from '@koa/router';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../nexus/log.js';

/** The files served, where they lie (beside the sources, and the same below dist/ after npm run build), and their type. */
export const TOOLS = {
  'nexus-ci.mjs': { dir: 'scripts/ci/dist', type: 'text/javascript; charset=utf-8' },
  'pilot.cjs': { dir: 'scripts/pilot-dist', type: 'text/javascript; charset=utf-8' },
  // The Workload API client that both load from beside themselves, only with SPIFFE_ENDPOINT_SOCKET.
  'workload-api.mjs': { dir: 'scripts/ci/dist', type: 'text/javascript; charset=utf-8' },
  'workload.proto': { dir: 'scripts/ci/dist', type: 'text/plain; charset=utf-8' },
} as const;
export type ToolName = keyof typeof TOOLS;
export const TOOLS_PREFIX = '/v1/tools/';
/** `sha256sum -c` input for every tool: what a template pins. */
export const SUMS = 'SHA256SUMS';

interface Served {
  bytes: Buffer;
  sha256: string;
  type: string;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Reads the tools from the installation; one that is missing is logged and not served (404). */
export function loadTools(log: Logger, root = new URL('../../', import.meta.url)): Map<string, Served> {
  const served = new Map<string, Served>();
  for (const [name, t] of Object.entries(TOOLS)) {
    const file = fileURLToPath(new URL(`${t.dir}/${name}`, root));
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(file);
    } catch (err) {
      log.warn({ file, err: (err as Error).message }, `${TOOLS_PREFIX}${name} is not served: the file is missing from the installation`);
      continue;
    }
    served.set(name, { bytes, sha256: sha256(bytes), type: t.type });
  }
  const sums = Buffer.from([...served].map(([name, s]) => `${s.sha256}  ${name}\n`).join(''));
  served.set(SUMS, { bytes: sums, sha256: sha256(sums), type: 'text/plain; charset=utf-8' });
  return served;
}

/** The routes; a request whose If-None-Match names the current hash gets 304. */
export function toolRoutes(tools: Map<string, Served>): Router {
  const router = new Router();
  for (const [name, t] of tools) {
    router.get(`${TOOLS_PREFIX}${name}`, (ctx) => {
      const etag = `"${t.sha256}"`;
      ctx.set('ETag', etag);
      ctx.set('X-Content-SHA256', t.sha256);
      // Revalidated on every use: a new Nexus may serve a new client under the same name.
      ctx.set('Cache-Control', 'no-cache');
      ctx.set('X-Content-Type-Options', 'nosniff');
      if (ctx.get('If-None-Match').split(/\s*,\s*/).includes(etag)) {
        ctx.status = 304;
        return;
      }
      ctx.type = t.type;
      ctx.body = t.bytes;
    });
  }
  return router;
}
