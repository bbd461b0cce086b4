-- Hardening (issue 8).
-- Exchanged tokens keep the claims they were minted from (and the JWT's alg, typ
-- and the issuer's key source at that time), never frozen grants: every use
-- re-resolves them against the current roles and issuer. Tokens minted
-- before this migration carry no claims, so they cannot be re-resolved and
-- are revoked here.
DELETE FROM oidc_tokens;
ALTER TABLE oidc_tokens DROP COLUMN grants;
ALTER TABLE oidc_tokens ADD COLUMN claims TEXT NOT NULL DEFAULT '{}'; -- JSON object: the verified JWT payload
ALTER TABLE oidc_tokens ADD COLUMN header TEXT NOT NULL DEFAULT '{}'; -- JSON: the JWT's alg and typ
ALTER TABLE oidc_tokens ADD COLUMN jwks_uri TEXT; -- the issuer's configured jwks_uri at mint time (NULL: discovery)

-- Token policy per issuer (RFC 8725, CI-aware); NULL means the default.
ALTER TABLE oidc_issuers ADD COLUMN max_token_lifetime_s INTEGER; -- default 3600
ALTER TABLE oidc_issuers ADD COLUMN tenant_claims TEXT;           -- JSON array; default ["sub"]
ALTER TABLE oidc_issuers ADD COLUMN allowed_types TEXT;           -- JSON array of extra `typ` values; default none
