-- PostgreSQL port of ../007_config_version.sql: one counter per kind of
-- configuration, bumped with every change, polled by every replica.
CREATE TABLE config_version (
  topic   TEXT PRIMARY KEY,
  version BIGINT NOT NULL
);

INSERT INTO config_version (topic, version) VALUES ('policies', 0), ('oidc', 0), ('tokens', 0);
