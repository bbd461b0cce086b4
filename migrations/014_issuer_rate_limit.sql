-- Per-issuer rate limits (issue 24): an issuer's own requests/s per tenant
-- and failed authentications/s per client IP, overriding the global
-- settings for its traffic. JSON {"per_tenant_rps","per_ip_failed_rps"},
-- both optional; NULL: the global settings.
ALTER TABLE oidc_issuers ADD COLUMN rate_limit TEXT;
