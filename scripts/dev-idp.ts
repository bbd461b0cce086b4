// `npm run dev-idp`: a local OIDC issuer for trying the CI flow without a CI
// platform (development only). It serves discovery and JWKS on loopback and
// issues GitHub-shaped tokens: POST /token with form fields that become claims.
//   curl -s http://127.0.0.1:8555/token -d grant_type=client_credentials \
//     -d repository=acme/api -d ref=refs/heads/main | jq -r .access_token
import { OAuth2Server } from 'oauth2-mock-server';

const port = Number(process.env.DEV_IDP_PORT ?? '8555');
const CLAIMS = ['repository', 'ref', 'environment', 'workflow', 'project_path', 'namespace_path', 'ref_protected'];

const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');
server.service.on('beforeTokenSigning', (token, req) => {
  const body = (req.body || {}) as Record<string, string>;
  for (const c of CLAIMS) if (typeof body[c] === 'string') token.payload[c] = body[c];
  const repo = body.repository;
  if (repo) {
    token.payload.repository_owner = repo.split('/')[0];
    token.payload.sub = `repo:${repo}:ref:${body.ref ?? 'refs/heads/main'}`;
  }
  token.payload.aud = body.audience ?? 'nexus';
});
await server.start(port, '127.0.0.1');
console.log(`dev IdP (not for production) at ${server.issuer.url}; tokens: POST ${server.issuer.url}/token grant_type=client_credentials repository=... ref=...`);
