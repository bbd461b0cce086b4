// The floor for the start-up rows: the same mTLS request as `pilot secret get`,
// from the smallest plain client (no CLI, no SPIFFE ID check, no output). What
// Pilot costs beyond this is Pilot's own; what this costs beyond `node -e 0`
// is TLS, the request and the server's answer.
const fs = require('node:fs');
const https = require('node:https');
const pki = `${process.env.NEXUS_DATA_DIR}/pki/`;
const addr = new URL(process.env.NEXUS_ADDR);
https.get(
  { host: addr.hostname, port: addr.port, path: `/v1/secrets/${process.argv[2]}`, cert: fs.readFileSync(`${pki}pilot.crt`), key: fs.readFileSync(`${pki}pilot.key`), ca: fs.readFileSync(`${pki}ca.crt`), checkServerIdentity: () => undefined },
  (res) => {
    if (res.statusCode !== 200) process.exitCode = 1;
    res.resume();
  },
);
