-- PostgreSQL port of ../006_token_signing_key.sql (issue 27): exchanged
-- tokens remember the kid and RFC 7638 thumbprint of the key that verified
-- their JWT, and die with it. Tokens minted before say no key and are revoked
-- here; the columns stay nullable for replicas not yet upgraded.
DELETE FROM oidc_tokens;
ALTER TABLE oidc_tokens ADD COLUMN key_kid TEXT;
ALTER TABLE oidc_tokens ADD COLUMN key_thumbprint TEXT;
