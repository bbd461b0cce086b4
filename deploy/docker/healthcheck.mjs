// The image's HEALTHCHECK: GET /healthz on the OIDC port (the port that answers
// without a client certificate). Liveness, not readiness: a sealed or
// not-yet-ready Nexus is alive, and an orchestrator that restarts it would
// only make it sealed again. The certificate is not verified: the request
// goes to this container's own loopback address, sends nothing and reads
// only the status code. Exit 0 healthy, 1 not.
import https from 'node:https';

const addr = process.env.NEXUS_OIDC_ADDR ?? '0.0.0.0:8554';
const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
if (addr === 'off' || !Number.isInteger(port)) {
  console.error(`healthcheck: NEXUS_OIDC_ADDR=${addr} has no port to ask`);
  process.exit(1);
}
const req = https.get({ host: '127.0.0.1', port, path: '/healthz', rejectUnauthorized: false, timeout: 4000 }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', (err) => {
  console.error(`healthcheck: ${err.message}`);
  process.exit(1);
});
