import Router from '@koa/router';
import type { Context } from 'koa';
import { BadRequestError, UnauthorizedError } from '../../nexus/errors.js';
import { changeAudited, noteAudit } from '../../nexus/http/audit.js';
import { readRaw } from '../../nexus/http/body.js';
import { queryOne } from '../../nexus/http/secrets-routes.js';
import { CI_EVENT_BODY_LIMIT, type CiEvents, type CiPlatform, type CiRunEnd } from './ci-events.js';

export const CI_EVENT_ROUTES = { github: '/v1/ci/events/github', gitlab: '/v1/ci/events/gitlab' } as const;

/**
 * POST /v1/ci/events/{github,gitlab}?issuer=NAME: the CI platforms' webhooks,
 * authenticated by the issuer's webhook secret, not by a bearer. A refusal
 * (no secret, bad signature or token) goes through `refused`, which spends
 * the caller's failed-authentication budget as a bad JWT does. Every request
 * is audited; an accepted one with the run it ended and how many tokens went.
 */
export function ciEventRoutes(events: CiEvents, refused: (ctx: Context, err: UnauthorizedError) => never): Router {
  const router = new Router();
  for (const platform of ['github', 'gitlab'] as const satisfies readonly CiPlatform[]) {
    router.post(CI_EVENT_ROUTES[platform], async (ctx) => {
      const action = `ci.event.${platform}`;
      noteAudit(ctx, { action });
      const issuer = queryOne(ctx, 'issuer');
      if (!issuer) throw new BadRequestError('issuer', 'the issuer query parameter names the issuer whose webhook secret signs this event (?issuer=NAME)');
      const raw = await readRaw(ctx, CI_EVENT_BODY_LIMIT);
      const req = { header: (n: string) => ctx.get(n), raw };
      let end: CiRunEnd | null;
      try {
        end = await events[platform](issuer, req);
      } catch (err) {
        if (err instanceof UnauthorizedError) refused(ctx, err);
        throw err;
      }
      if (!end) {
        noteAudit(ctx, { action, revoked: 0 });
        ctx.body = { outcome: 'ignored', revoked: 0 };
        return;
      }
      noteAudit(ctx, { action, object: { kind: 'ci.run', name: `${end.issuer}/${end.run}` } });
      // The revocation is a change: its intent is on record before it commits.
      const out = await changeAudited(ctx, () => events.end(end));
      noteAudit(ctx, { action, revoked: out.revokedHashes.length });
      ctx.body = { outcome: out.outcome, revoked: out.revokedHashes.length, run: end.run };
    });
  }
  return router;
}
