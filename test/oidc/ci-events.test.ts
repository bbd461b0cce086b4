import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { githubHeaders, gitlabHeaders, jobHook, raw, workflowRun } from '../helpers/ci-events.js';
import { github, gitlab } from '../helpers/idp.js';
import { GITHUB_TENANT_CLAIMS, startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { TENANT_CLAIM_PRESETS } from '../../plugins/oidc/schema.js';

// Job end enforced by the server: the CI platform's own end-of-work event
// (GitHub workflow_run completed, GitLab Job Hook for a finished job) revokes
// the tokens exchanged from that run's JWTs, even when the job's own post
// step never ran (runner killed, job cancelled hard).
describe('OIDC port: CI end-of-work events revoke the run\'s tokens', function () {
  this.timeout(60_000);
  let e: OidcEnv;
  const SECRET = 'whsec-Kq3v9TnZ2pX8rLw5mYb7';
  const ISSUER = { audiences: ['nexus'], algorithms: ['RS256', 'ES256'], tenant_claims: [...GITHUB_TENANT_CLAIMS, ...TENANT_CLAIM_PRESETS.gitlab] };

  const exchangeGh = async (repo: string, runId: number, attempt: number) => {
    const r = await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt: await e.idp.token(github(repo, 'refs/heads/main', { run_id: String(runId), run_attempt: String(attempt), run_number: '7' })) });
    expect(r.status, r.text).to.equal(200);
    return r.body.token as string;
  };
  const exchangeGl = async (project: string, jobId: number) => {
    const r = await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt: await e.idp.token(gitlab(project, 'main', { job_id: String(jobId), pipeline_id: '900', project_id: '42' })) });
    expect(r.status, r.text).to.equal(200);
    return r.body.token as string;
  };
  const alive = async (token: string) => (await e.oidc(token, 'GET', '/v1/whoami')).status;
  const postGithub = (body: Buffer, headers: Record<string, string>, issuer = 'ci') => e.oidc(undefined, 'POST', `/v1/ci/events/github?issuer=${issuer}`, body, headers);
  const postGitlab = (body: Buffer, headers: Record<string, string>, issuer = 'ci') => e.oidc(undefined, 'POST', `/v1/ci/events/gitlab?issuer=${issuer}`, body, headers);
  const trail = () => fs.readFileSync(path.join(e.t.dir, 'audit.jsonl'), 'utf8');
  const records = () => trail().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

  before(async () => {
    e = await startOidcEnv();
    const opt = await e.admin('PUT', '/v1/oidc/issuers/ci', { issuer: e.idp.url, ...ISSUER, webhook_secret: SECRET });
    expect(opt.status, opt.text).to.equal(200);
    const plain = await e.admin('PUT', '/v1/oidc/issuers/plain', { issuer: 'https://idp.example.com', audiences: ['nexus'], verify: false });
    expect(plain.status, plain.text).to.equal(201);
    for (const [name, claims] of [
      ['repo', { repository: 'org/repo' }],
      ['other', { repository: 'org/other' }],
      ['proj', { project_path: 'group/proj' }],
      ['proj2', { project_path: 'group/other' }],
    ] as const) {
      const r = await e.admin('PUT', `/v1/oidc/roles/${name}`, { issuer: 'ci', bound_claims: claims, paths: ['ci/**'], permissions: ['read'] });
      expect(r.status, r.text).to.equal(201);
    }
  });
  after(() => e?.stop());

  it('the issuer\'s webhook_secret is write-only: GET and the list never show it', async () => {
    const one = await e.admin('GET', '/v1/oidc/issuers/ci');
    expect(one.status).to.equal(200);
    expect(one.body).to.not.have.property('webhook_secret');
    expect(one.text).to.not.include(SECRET);
    expect((await e.admin('GET', '/v1/oidc/issuers')).text).to.not.include(SECRET);
  });

  it('GitHub: a signed workflow_run completed event revokes exactly that run attempt\'s tokens of that repository', async () => {
    const a1 = await exchangeGh('org/repo', 100, 1);
    const a1b = await exchangeGh('org/repo', 100, 1);
    const a2 = await exchangeGh('org/repo', 100, 2);
    const b = await exchangeGh('org/repo', 200, 1);
    const otherRepo = await exchangeGh('org/other', 100, 1);
    const body = raw(workflowRun('org/repo', 100, 1));
    const r = await postGithub(body, githubHeaders(SECRET, body));
    expect(r.status, r.text).to.equal(200);
    expect(r.body).to.deep.include({ outcome: 'revoked', revoked: 2 });
    expect(await alive(a1)).to.equal(401);
    expect(await alive(a1b)).to.equal(401);
    for (const t of [a2, b, otherRepo]) expect(await alive(t)).to.equal(200);
    const rec = records().filter((x) => x.action === 'ci.event.github' && x.status === 200).pop()!;
    expect(rec).to.deep.include({ revoked: 2, decision: 'allow' });
    expect(rec.object).to.deep.equal({ kind: 'ci.run', name: 'ci/github:org/repo:100:1' });
  });

  it('GitHub: a bad signature, a body altered after signing, or no signature is 401 (audited) and revokes nothing', async () => {
    const t = await exchangeGh('org/repo', 300, 1);
    const body = raw(workflowRun('org/repo', 300, 1));
    const wrong = await postGithub(body, githubHeaders('not-the-secret-at-all', body));
    expect(wrong.status, wrong.text).to.equal(401);
    const altered = Buffer.from(body.toString().replace('"org/repo"', '"org/rep0"'));
    const tampered = await postGithub(altered, githubHeaders(SECRET, body));
    expect(tampered.status, tampered.text).to.equal(401);
    const { 'X-Hub-Signature-256': _, ...unsigned } = githubHeaders(SECRET, body);
    const none = await postGithub(body, unsigned);
    expect(none.status, none.text).to.equal(401);
    const garbled = await postGithub(body, { ...githubHeaders(SECRET, body), 'X-Hub-Signature-256': 'sha1=abc' });
    expect(garbled.status, garbled.text).to.equal(401);
    expect(await alive(t)).to.equal(200);
    const reasons = records().filter((x) => x.action === 'ci.event.github' && x.status === 401).map((x) => x.reason);
    expect(reasons).to.include.members(['webhook_signature_invalid', 'webhook_signature_missing']);
  });

  it('GitHub: a replayed delivery is a no-op (same delivery id, or the same signed body under a new id); a token exchanged after the first delivery survives', async () => {
    await exchangeGh('org/repo', 400, 1);
    const body = raw(workflowRun('org/repo', 400, 1));
    const headers = githubHeaders(SECRET, body);
    const first = await postGithub(body, headers);
    expect(first.body).to.deep.include({ outcome: 'revoked', revoked: 1 });
    const later = await exchangeGh('org/repo', 400, 1);
    const again = await postGithub(body, headers);
    expect(again.status, again.text).to.equal(200);
    expect(again.body).to.deep.include({ outcome: 'replayed', revoked: 0 });
    const renamed = await postGithub(body, githubHeaders(SECRET, body));
    expect(renamed.body).to.deep.include({ outcome: 'replayed', revoked: 0 });
    expect(await alive(later)).to.equal(200);
  });

  it('GitHub: events that end nothing (requested, in_progress, ping) are accepted and ignored', async () => {
    const t = await exchangeGh('org/repo', 500, 1);
    for (const action of ['requested', 'in_progress']) {
      const body = raw(workflowRun('org/repo', 500, 1, action));
      const r = await postGithub(body, githubHeaders(SECRET, body));
      expect(r.status, r.text).to.equal(200);
      expect(r.body).to.deep.include({ outcome: 'ignored', revoked: 0 });
    }
    const ping = raw({ zen: 'Keep it logically awesome.', hook_id: 1 });
    const p = await postGithub(ping, githubHeaders(SECRET, ping, { event: 'ping' }));
    expect(p.status, p.text).to.equal(200);
    expect(p.body).to.deep.include({ outcome: 'ignored' });
    expect(await alive(t)).to.equal(200);
  });

  it('an issuer that has not opted in, an unknown issuer, no issuer, no delivery id and an oversized body are refused', async () => {
    const t = await exchangeGh('org/repo', 600, 1);
    const body = raw(workflowRun('org/repo', 600, 1));
    expect((await postGithub(body, githubHeaders(SECRET, body), 'plain')).status).to.equal(401);
    expect((await postGithub(body, githubHeaders(SECRET, body), 'nope')).status).to.equal(401);
    const noIssuer = await e.oidc(undefined, 'POST', '/v1/ci/events/github', body, githubHeaders(SECRET, body));
    expect(noIssuer.status).to.equal(400);
    expect(noIssuer.text).to.match(/issuer/);
    const { 'X-GitHub-Delivery': _, ...noId } = githubHeaders(SECRET, body);
    const r = await postGithub(body, noId);
    expect(r.status).to.equal(400);
    expect(r.text).to.match(/X-GitHub-Delivery/);
    const huge = raw({ ...workflowRun('org/repo', 600, 1), padding: 'x'.repeat(2 * 1024 * 1024) });
    expect((await postGithub(huge, githubHeaders(SECRET, huge))).status).to.equal(413);
    const form = await postGithub(body, { ...githubHeaders(SECRET, body), 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(form.status).to.equal(400);
    expect(form.text).to.match(/application\/json/);
    // Already on the webhook's first delivery, so that a misconfigured hook shows it at once.
    const ping = raw({ zen: 'Approachable is better than simple.', hook_id: 3 });
    expect((await postGithub(ping, { ...githubHeaders(SECRET, ping, { event: 'ping' }), 'Content-Type': 'application/x-www-form-urlencoded' })).status).to.equal(400);
    expect(await alive(t)).to.equal(200);
    const reasons = records().filter((x) => x.action === 'ci.event.github' && x.status === 401).map((x) => x.reason);
    expect(reasons).to.include('webhook_not_configured');
  });

  it('GitLab: a Job Hook for a finished job revokes that job\'s tokens of that project; a wrong or missing token is 401; a running job is ignored; a replay is a no-op', async () => {
    const j = await exchangeGl('group/proj', 555);
    const j2 = await exchangeGl('group/proj', 556);
    const otherProject = await exchangeGl('group/other', 555);
    const running = raw(jobHook('group/proj', 555, 'running'));
    const ignored = await postGitlab(running, gitlabHeaders(SECRET));
    expect(ignored.status, ignored.text).to.equal(200);
    expect(ignored.body).to.deep.include({ outcome: 'ignored', revoked: 0 });
    expect(await alive(j)).to.equal(200);
    const done = raw(jobHook('group/proj', 555, 'canceled'));
    expect((await postGitlab(done, gitlabHeaders('wrong-token-wrong-token'))).status).to.equal(401);
    expect((await postGitlab(done, gitlabHeaders(SECRET.slice(0, -1)))).status).to.equal(401);
    expect((await postGitlab(done, gitlabHeaders(undefined))).status).to.equal(401);
    expect(await alive(j)).to.equal(200);
    const headers = gitlabHeaders(SECRET);
    const r = await postGitlab(done, headers);
    expect(r.status, r.text).to.equal(200);
    expect(r.body).to.deep.include({ outcome: 'revoked', revoked: 1 });
    expect(await alive(j)).to.equal(401);
    expect(await alive(j2)).to.equal(200);
    expect(await alive(otherProject)).to.equal(200);
    const again = await postGitlab(done, headers);
    expect(again.body).to.deep.include({ outcome: 'replayed', revoked: 0 });
    const rec = records().filter((x) => x.action === 'ci.event.gitlab' && x.status === 200 && x.revoked === 1).pop()!;
    expect(rec.object).to.deep.equal({ kind: 'ci.run', name: 'ci/gitlab:group/proj:555' });
  });

  it('the secret is in no log line, no audit record and no database file; PUT without it keeps it, null removes it', async () => {
    expect(e.logs()).to.not.include(SECRET);
    expect(trail()).to.not.include(SECRET);
    for (const f of fs.readdirSync(e.t.dir, { recursive: true }) as string[]) {
      const p = path.join(e.t.dir, f);
      if (fs.statSync(p).isFile()) expect(fs.readFileSync(p).includes(SECRET), p).to.equal(false);
    }
    const kept = await e.admin('PUT', '/v1/oidc/issuers/ci', { issuer: e.idp.url, ...ISSUER });
    expect(kept.status, kept.text).to.equal(200);
    await exchangeGh('org/repo', 700, 1);
    const body = raw(workflowRun('org/repo', 700, 1));
    expect((await postGithub(body, githubHeaders(SECRET, body))).body).to.deep.include({ revoked: 1 });
    const removed = await e.admin('PUT', '/v1/oidc/issuers/ci', { issuer: e.idp.url, ...ISSUER, webhook_secret: null });
    expect(removed.status, removed.text).to.equal(200);
    const body2 = raw(workflowRun('org/repo', 701, 1));
    expect((await postGithub(body2, githubHeaders(SECRET, body2))).status).to.equal(401);
    const short = await e.admin('PUT', '/v1/oidc/issuers/ci', { issuer: e.idp.url, ...ISSUER, webhook_secret: 'short' });
    expect(short.status).to.equal(400);
    expect(short.text).to.not.include('short"');
  });

  it('deleting an issuer deletes its webhook secret: an issuer made again under that name has none', async () => {
    const def = { issuer: 'https://gone.example.com', audiences: ['nexus'], verify: false };
    expect((await e.admin('PUT', '/v1/oidc/issuers/gone', { ...def, webhook_secret: SECRET })).status).to.equal(201);
    const ping = raw({ zen: 'Design for failure.', hook_id: 2 });
    expect((await postGithub(ping, githubHeaders(SECRET, ping, { event: 'ping' }), 'gone')).status).to.equal(200);
    expect((await e.admin('DELETE', '/v1/oidc/issuers/gone')).status).to.equal(204);
    expect((await e.admin('PUT', '/v1/oidc/issuers/gone', def)).status).to.equal(201);
    expect((await postGithub(ping, githubHeaders(SECRET, ping, { event: 'ping' }), 'gone')).status).to.equal(401);
  });
});
