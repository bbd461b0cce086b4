-- One counter per kind of configuration (the change-notice topics), bumped
-- in the same transaction as every change of that kind. Each process reads
-- them on a short period and reloads a kind whose counter moved, so a change
-- notice that was lost (a crash between commit and NOTIFY) costs at most
-- that period. Numbered 007: 006 is reserved for other work.
CREATE TABLE config_version (
  topic   TEXT PRIMARY KEY, -- 'policies', 'oidc' (issuers and roles), 'tokens' (exchanged-token revocations)
  version INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO config_version (topic, version) VALUES ('policies', 0), ('oidc', 0), ('tokens', 0);
