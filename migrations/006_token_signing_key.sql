-- Exchanged tokens remember the issuer key that verified their JWT (issue 27):
-- its kid, and its RFC 7638 SHA-256 thumbprint, which is what counts (an IdP
-- may reuse a kid for new key material). Once a key set fetched from the
-- issuer no longer holds that key, the token is refused, as the JWTs it
-- signed are: rotating a key out is the answer to a leaked IdP key.
-- Tokens minted before this migration do not say which key signed them, so
-- no rotation could end them: they are revoked here, and CI jobs exchange
-- again. The columns stay nullable so that a replica not yet upgraded can
-- still write its rows; upgraded code refuses a row without a key.
DELETE FROM oidc_tokens;
ALTER TABLE oidc_tokens ADD COLUMN key_kid TEXT;        -- the JWT's kid (NULL: it had none)
ALTER TABLE oidc_tokens ADD COLUMN key_thumbprint TEXT; -- base64url SHA-256 JWK thumbprint
