-- PostgreSQL port of ../004_hardening.sql (issue 8): exchanged tokens keep
-- the claims they were minted from, never frozen grants; tokens minted before
-- carry no claims and are revoked here. Per-issuer token policy columns.
DELETE FROM oidc_tokens;
ALTER TABLE oidc_tokens DROP COLUMN grants;
ALTER TABLE oidc_tokens ADD COLUMN claims TEXT NOT NULL DEFAULT '{}';
ALTER TABLE oidc_tokens ADD COLUMN header TEXT NOT NULL DEFAULT '{}';
ALTER TABLE oidc_tokens ADD COLUMN jwks_uri TEXT;

ALTER TABLE oidc_issuers ADD COLUMN max_token_lifetime_s INTEGER;
ALTER TABLE oidc_issuers ADD COLUMN tenant_claims TEXT;
ALTER TABLE oidc_issuers ADD COLUMN allowed_types TEXT;
