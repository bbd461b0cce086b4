// The name of a CI run (GitHub) or job (GitLab), the same whether it is read
// from a JWT's verified claims at exchange or from the platform's end-of-work
// event: tokens minted for a run are found by it when the run ends. The
// repository or project is part of the name, so an event for one repository
// never matches another's run of the same id.

/** Repository and project paths never hold a colon or whitespace, so the name splits one way only. */
const PATH = /^[^\s:]{1,512}$/;
/** Run, attempt and job ids: decimal, as the platforms write them (strings in JWTs, numbers in events). */
const ID = /^[0-9]{1,20}$/;

const text = (v: unknown): string | null => (typeof v === 'string' ? v : typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? String(v) : null);

/** `github:<repository>:<run_id>:<run_attempt>`, or null when any part is missing or malformed. */
export function githubRun(repository: unknown, runId: unknown, attempt: unknown): string | null {
  const [r, id, a] = [text(repository), text(runId), text(attempt)];
  return r && PATH.test(r) && id && ID.test(id) && a && ID.test(a) ? `github:${r}:${id}:${a}` : null;
}

/** `gitlab:<project_path>:<job_id>`, or null. */
export function gitlabJob(projectPath: unknown, jobId: unknown): string | null {
  const [p, id] = [text(projectPath), text(jobId)];
  return p && PATH.test(p) && id && ID.test(id) ? `gitlab:${p}:${id}` : null;
}

/**
 * The run a verified JWT was issued to: GitHub Actions' tokens carry
 * `repository`, `run_id` and `run_attempt`; GitLab CI's ID tokens carry
 * `project_path` and `job_id`. Null for any other token (no event ends it).
 */
export function ciRunOf(claims: Record<string, unknown>): string | null {
  return githubRun(claims.repository, claims.run_id, claims.run_attempt) ?? gitlabJob(claims.project_path, claims.job_id);
}
