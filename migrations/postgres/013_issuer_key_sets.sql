-- PostgreSQL port of ../013_issuer_key_sets.sql (issue 24): an issuer's
-- inline JWK Set or key-set file, and the stale window of fetched keys.
ALTER TABLE oidc_issuers ADD COLUMN jwks TEXT;
ALTER TABLE oidc_issuers ADD COLUMN jwks_file TEXT;
ALTER TABLE oidc_issuers ADD COLUMN jwks_stale_s INTEGER;
