-- PostgreSQL port of ../010_ci_events.sql (issue 21): exchanged tokens name
-- the CI run or job they were minted for, so that the platform's end-of-work
-- event revokes them; deliveries already acted on are remembered until
-- expires_at, so that a replay is a no-op.
ALTER TABLE oidc_tokens ADD COLUMN ci_run TEXT;
CREATE INDEX oidc_tokens_ci_run ON oidc_tokens (issuer, ci_run) WHERE ci_run IS NOT NULL;

CREATE TABLE ci_event_deliveries (
  key        TEXT PRIMARY KEY,
  expires_at BIGINT NOT NULL
);

CREATE INDEX ci_event_deliveries_expiry ON ci_event_deliveries (expires_at);
