-- Job end enforced by the server (issue 21): a CI platform's end-of-work
-- event (GitHub workflow_run completed, GitLab Job Hook) revokes the tokens
-- exchanged from that run's or job's JWTs. ci_run names the run, from the
-- verified claims at exchange: 'github:<repository>:<run_id>:<run_attempt>'
-- or 'gitlab:<project_path>:<job_id>'; NULL for a JWT that names neither.
-- The repository or project is part of the name, so an event matches only
-- its own repository's tokens, and the issuer is matched beside it.
ALTER TABLE oidc_tokens ADD COLUMN ci_run TEXT;
CREATE INDEX oidc_tokens_ci_run ON oidc_tokens (issuer, ci_run) WHERE ci_run IS NOT NULL;

-- Deliveries already acted on, so that a replay is a no-op: each event is
-- remembered by the platform's delivery id and by the digest of its signed
-- body (a delivery id header is not signed: a replay may carry a new one).
-- Kept until expires_at (ms since epoch), well past any token's lifetime.
CREATE TABLE ci_event_deliveries (
  key        TEXT PRIMARY KEY, -- '<platform>:<issuer>:id:<delivery id>' or '<platform>:<issuer>:body:<sha256 hex>'
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX ci_event_deliveries_expiry ON ci_event_deliveries (expires_at);
