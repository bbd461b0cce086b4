import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { BadRequestError, UnauthorizedError } from '../../nexus/errors.js';
import { parseName } from '../../nexus/policy/schema.js';
import { parseInput, z } from '../../nexus/schema.js';
import { githubRun, gitlabJob } from './ci-run.js';
import type { OidcStore } from './store.js';
import type { WebhookSecrets } from './webhook-secrets.js';

export type CiPlatform = 'github' | 'gitlab';

/** A workflow_run payload is some tens of KiB (repository and commit objects); a Job Hook a few. */
export const CI_EVENT_BODY_LIMIT = 512 * 1024;

/**
 * How long a delivery is remembered against replay: GitHub lets an operator
 * redeliver for 3 days, and every token a run could hold has expired long before.
 */
export const REMEMBER_DELIVERY_MS = 7 * 24 * 3600 * 1000;

/** GitLab job statuses after which the job holds nothing any more. */
const FINISHED_JOB = new Set(['success', 'failed', 'canceled', 'skipped']);

/** A request as the service needs it: headers by name (case-insensitive), the raw body. */
export interface CiEventRequest {
  header(name: string): string;
  raw: Buffer;
}

/** An authenticated event that ends a run: what `end` acts on. */
export interface CiRunEnd {
  issuer: string;
  /** The run or job ('github:<repository>:<run_id>:<run_attempt>', 'gitlab:<project_path>:<job_id>'). */
  run: string;
  /** What the delivery is remembered by: its signed body's digest, and its delivery id when it has one. */
  deliveryKeys: string[];
}

export interface CiEventOutcome {
  outcome: 'revoked' | 'replayed';
  /** The SHA-256 hashes of the exchanged tokens revoked (for whatever was minted with them). */
  revokedHashes: Buffer[];
}

const GithubAction = z.looseObject({ action: z.string().max(64) });
const WorkflowRun = z.looseObject({
  workflow_run: z.looseObject({ id: z.int().min(1), run_attempt: z.int().min(1) }),
  repository: z.looseObject({ full_name: z.string().min(3).max(512) }),
});
const JobHook = z.looseObject({
  object_kind: z.string().max(64),
  build_status: z.string().max(64),
  build_id: z.int().min(1),
  project: z.looseObject({ path_with_namespace: z.string().min(1).max(512) }),
});

const DELIVERY_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function json(req: CiEventRequest, platform: string): unknown {
  const type = req.header('Content-Type');
  if (!/^application\/json\b/i.test(type)) {
    throw new BadRequestError('content_type', `the ${platform} webhook must send application/json (configure its content type so)`);
  }
  try {
    return JSON.parse(req.raw.toString('utf8')) as unknown;
  } catch {
    throw new BadRequestError('json', 'request body is not valid JSON');
  }
}

function deliveryId(req: CiEventRequest, names: string[], required: boolean): string | null {
  for (const n of names) {
    const v = req.header(n);
    if (!v) continue;
    if (!DELIVERY_ID.test(v)) throw new BadRequestError('delivery', `${n} is not a delivery id`);
    return v;
  }
  if (required) throw new BadRequestError('delivery', `${names.join(' or ')} is required`);
  return null;
}

/**
 * The CI platforms' end-of-work events, per issuer that opted in with a
 * webhook secret: authenticated first (GitHub: HMAC-SHA256 of the raw body;
 * GitLab: the shared token, compared in constant time), then read. An event
 * that ends a run revokes every exchanged token of that issuer minted for that
 * run of that repository; any other event is accepted and ignored. A delivery
 * already acted on, by its id or by its signed body (the id header is not
 * signed), changes nothing.
 */
export class CiEvents {
  constructor(
    private readonly store: OidcStore,
    private readonly secrets: Pick<WebhookSecrets, 'open'>,
    private readonly now: () => number = Date.now,
  ) {}

  /** An authenticated GitHub delivery: the run it ends, or null for one that ends nothing. */
  async github(issuerName: string, req: CiEventRequest): Promise<CiRunEnd | null> {
    const issuer = parseName(issuerName);
    await this.authenticate(issuer, (secret) => {
      const sig = req.header('X-Hub-Signature-256');
      if (!sig) throw new UnauthorizedError('webhook_signature_missing');
      const m = /^sha256=([0-9a-fA-F]{64})$/.exec(sig);
      const mac = createHmac('sha256', secret).update(req.raw).digest();
      if (!m || !timingSafeEqual(mac, Buffer.from(m[1]!, 'hex'))) throw new UnauthorizedError('webhook_signature_invalid');
    });
    // Checked on every event, so that the webhook's first delivery (a ping) already says what is wrong.
    const body = json(req, 'GitHub');
    if (req.header('X-GitHub-Event') !== 'workflow_run') return null;
    if (parseInput(GithubAction, body).action !== 'completed') return null;
    const e = parseInput(WorkflowRun, body);
    const run = githubRun(e.repository.full_name, e.workflow_run.id, e.workflow_run.run_attempt);
    if (!run) throw new BadRequestError('repository', 'repository.full_name is not a repository name');
    return runEnd(issuer, 'github', run, req, deliveryId(req, ['X-GitHub-Delivery'], true));
  }

  /** An authenticated GitLab delivery: the job it ends, or null for one that ends nothing. */
  async gitlab(issuerName: string, req: CiEventRequest): Promise<CiRunEnd | null> {
    const issuer = parseName(issuerName);
    await this.authenticate(issuer, (secret) => {
      const token = req.header('X-Gitlab-Token');
      if (!token) throw new UnauthorizedError('webhook_token_missing');
      // Digests first: equal lengths for timingSafeEqual, and no early exit on a length that differs.
      const digest = (b: Buffer | string) => createHash('sha256').update(b).digest();
      if (!timingSafeEqual(digest(token), digest(secret))) throw new UnauthorizedError('webhook_token_invalid');
    });
    const body = json(req, 'GitLab');
    if (req.header('X-Gitlab-Event') !== 'Job Hook') return null;
    const e = parseInput(JobHook, body);
    if (e.object_kind !== 'build' || !FINISHED_JOB.has(e.build_status)) return null;
    const run = gitlabJob(e.project.path_with_namespace, e.build_id);
    if (!run) throw new BadRequestError('project', 'project.path_with_namespace is not a project path');
    // Idempotency-Key stays the same across GitLab's retries (17.4+); the event UUID before it.
    return runEnd(issuer, 'gitlab', run, req, deliveryId(req, ['Idempotency-Key', 'X-Gitlab-Event-UUID'], false));
  }

  /** Refuses an issuer without a webhook secret (unknown, or not opted in) like a bad signature: 401. */
  private async authenticate(issuer: string, check: (secret: Buffer) => void): Promise<void> {
    const secret = await this.secrets.open(issuer);
    if (!secret) throw new UnauthorizedError('webhook_not_configured');
    try {
      check(secret);
    } finally {
      secret.fill(0);
    }
  }

  /** Revokes the run's tokens and remembers the delivery, in one transaction; a delivery remembered already changes nothing. */
  async end(e: CiRunEnd): Promise<CiEventOutcome> {
    const now = this.now();
    const hashes = await this.store.endCiRun(e.issuer, e.run, e.deliveryKeys, now, now + REMEMBER_DELIVERY_MS);
    return hashes === null ? { outcome: 'replayed', revokedHashes: [] } : { outcome: 'revoked', revokedHashes: hashes };
  }
}

function runEnd(issuer: string, platform: CiPlatform, run: string, req: CiEventRequest, delivery: string | null): CiRunEnd {
  const body = `${platform}:${issuer}:body:${createHash('sha256').update(req.raw).digest('hex')}`;
  return { issuer, run, deliveryKeys: delivery ? [body, `${platform}:${issuer}:id:${delivery}`] : [body] };
}
