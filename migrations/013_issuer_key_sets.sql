-- Key sets for IdPs Nexus cannot reach (issue 24): an issuer may carry its
-- JWK Set inline, or name a file that holds it (reloaded on change), instead
-- of or beside discovery; and how long keys fetched from the IdP keep
-- verifying while it does not answer. NULL in all three: as before (no
-- static set; the default stale window).
ALTER TABLE oidc_issuers ADD COLUMN jwks TEXT;          -- JSON JWK Set
ALTER TABLE oidc_issuers ADD COLUMN jwks_file TEXT;     -- path on the server
ALTER TABLE oidc_issuers ADD COLUMN jwks_stale_s INTEGER;
