// CI platforms' end-of-work webhooks, shaped as GitHub and GitLab send them
// (the fields Nexus reads, and enough around them to look real), signed the
// way each platform signs.
import { createHmac, randomUUID } from 'node:crypto';

/** A GitHub `workflow_run` delivery body for `repository`'s run `runId`, attempt `attempt`. */
export function workflowRun(repository: string, runId: number, attempt: number, action = 'completed'): Record<string, unknown> {
  return {
    action,
    workflow_run: {
      id: runId,
      name: 'deploy',
      run_attempt: attempt,
      run_number: 7,
      event: 'push',
      status: action === 'completed' ? 'completed' : 'in_progress',
      conclusion: action === 'completed' ? 'cancelled' : null,
      head_branch: 'main',
      repository: { full_name: repository },
    },
    repository: { id: 1, full_name: repository, name: repository.split('/')[1], owner: { login: repository.split('/')[0] } },
    sender: { login: 'octocat' },
  };
}

/** The headers GitHub sends with `raw` signed by `secret` (X-Hub-Signature-256: HMAC-SHA256 over the raw body). */
export function githubHeaders(secret: string, raw: Buffer, opts: { event?: string; delivery?: string } = {}): Record<string, string> {
  return {
    'X-GitHub-Event': opts.event ?? 'workflow_run',
    'X-GitHub-Delivery': opts.delivery ?? randomUUID(),
    'X-Hub-Signature-256': `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`,
    'User-Agent': 'GitHub-Hookshot/test',
  };
}

/** A GitLab Job Hook body for job `jobId` of `projectPath`. */
export function jobHook(projectPath: string, jobId: number, status: string): Record<string, unknown> {
  return {
    object_kind: 'build',
    type: 'build',
    ref: 'main',
    build_id: jobId,
    build_name: 'deploy',
    build_stage: 'deploy',
    build_status: status,
    pipeline_id: 900,
    project_id: 42,
    project_name: projectPath.split('/').join(' / '),
    project: { id: 42, name: projectPath.split('/').pop(), path_with_namespace: projectPath },
    repository: { name: projectPath.split('/').pop() },
  };
}

export function gitlabHeaders(token: string | undefined, opts: { event?: string; uuid?: string } = {}): Record<string, string> {
  return {
    'X-Gitlab-Event': opts.event ?? 'Job Hook',
    'X-Gitlab-Event-UUID': opts.uuid ?? randomUUID(),
    ...(token === undefined ? {} : { 'X-Gitlab-Token': token }),
    'User-Agent': 'GitLab/17.5.0',
  };
}

export const raw = (body: unknown): Buffer => Buffer.from(JSON.stringify(body));
