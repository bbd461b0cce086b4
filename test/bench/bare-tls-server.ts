// Baseline for the mTLS bench: a bare Koa route behind the same HTTPS setup
// (client certificate required, same CA, same server SVID), answering a JSON
// body the size and shape of a secret read, so the ratio measures what Nexus
// adds (auth, policy, storage, decryption), not the payload. Prints its port.
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import Koa from 'koa';

const pki = process.argv[2]!;
// "server-tls": no client certificate, like the OIDC port.
const clientCert = process.argv[3] !== 'server-tls';
const app = new Koa();
const body = { path: 'bench/read', version: 1, data: { username: 'svc', password: 'x'.repeat(200) }, created_at: new Date().toISOString() };
app.use((ctx) => {
  ctx.set('Cache-Control', 'no-store');
  ctx.body = body;
});
const server = https.createServer(
  {
    ca: fs.readFileSync(path.join(pki, 'ca.crt')),
    cert: fs.readFileSync(path.join(pki, 'server.crt')),
    key: fs.readFileSync(path.join(pki, 'server.key')),
    requestCert: clientCert,
    rejectUnauthorized: clientCert,
    minVersion: 'TLSv1.2',
  },
  app.callback(),
);
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`port ${(server.address() as { port: number }).port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
