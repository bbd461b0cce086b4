-- PostgreSQL port of ../014_issuer_rate_limit.sql (issue 24): an issuer's
-- own rate limits as JSON text; NULL: the global settings.
ALTER TABLE oidc_issuers ADD COLUMN rate_limit TEXT;
