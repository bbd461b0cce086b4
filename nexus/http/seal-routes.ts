import Router from '@koa/router';
import type { SealController } from '../seal/seal.js';
import { SealStatusSchema, UnsealInput } from '../seal/schema.js';
import { noteAudit } from './audit.js';
import { readBody } from './body.js';
import { body, ERRORS, json, type Paths } from './openapi.js';
import { requireAdmin, type AdminDeps } from './policy-routes.js';

/**
 * Seal status and unseal: any valid SVID (the handshake proves one), also
 * while sealed. Sealing a running server: admin. `admin` is null while the
 * server is sealed since start (it has no policies yet: the gate answers anyway).
 */
export function sealRoutes(seal: SealController, admin: AdminDeps | null): Router {
  const router = new Router({ prefix: '/v1/sys' });
  router.get('/seal-status', (ctx) => {
    ctx.body = seal.status();
  });
  router.put('/unseal', async (ctx) => {
    const input = await readBody(ctx, UnsealInput, 4096);
    noteAudit(ctx, { action: 'seal.unseal' });
    ctx.body = 'reset' in input ? seal.reset() : await seal.submit(input.key, input.nonce);
  });
  if (admin) {
    router.put('/seal', requireAdmin(admin), (ctx) => {
      noteAudit(ctx, { action: 'seal.seal' });
      ctx.body = seal.seal();
    });
  }
  return router;
}

export function sealPaths(): Paths {
  const status = json('the seal status', SealStatusSchema);
  return {
    '/v1/sys/seal-status': { get: { operationId: 'sealStatus', summary: 'whether Nexus is sealed, and the unseal progress (any valid SVID; answered while sealed)', responses: { '200': status } } },
    '/v1/sys/unseal': {
      put: {
        operationId: 'unseal',
        summary: 'one unseal share, or reset the attempt (any valid SVID); at the threshold the root key is rebuilt and Nexus serves',
        requestBody: body(UnsealInput),
        responses: { '200': status, '400': ERRORS['400'], '409': err409(), '413': ERRORS['413'], '503': ERRORS['503'] },
      },
    },
    '/v1/sys/seal': { put: { operationId: 'seal', summary: 'seal a running Nexus: the root key leaves memory (admin)', responses: { '200': status, '400': ERRORS['400'], '403': ERRORS['403'], '503': ERRORS['503'] } } },
  };
}

function err409() {
  return { ...ERRORS['409'], description: 'the share belongs to another unseal attempt (nonce)' };
}
