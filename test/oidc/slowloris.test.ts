import { expect } from 'chai';
import tls from 'node:tls';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';

describe('slow clients on both ports', function () {
  this.timeout(40_000);
  let e: OidcEnv;
  before(async () => {
    e = await startOidcEnv();
  });
  after(() => e.stop());

  for (const port of ['oidc', 'mtls'] as const) {
    it(`${port} port drops a client that trickles its headers (slowloris) instead of holding the connection`, async () => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port: port === 'oidc' ? e.port : e.t.port,
        ca: e.t.caPem,
        servername: 'localhost',
        ...(port === 'mtls' ? { cert: e.t.admin.cert, key: e.t.admin.key } : {}),
    });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n');
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    let sent = 0;
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    // One header byte every 250 ms, for up to 30 s: far past the header timeouts (5 s OIDC, 10 s mTLS).
    const trickle = setInterval(() => {
      if (socket.destroyed || sent > 120) return;
      socket.write(sent % 2 ? 'a' : 'X-Slow: ');
      sent++;
    }, 250);
    await closed;
    clearInterval(trickle);
    expect(sent, 'the server closed the connection before the client gave up').to.be.lessThan(120);
    expect(answer === '' || /^HTTP\/1\.1 408[^]*"code":"bad_request"/.test(answer), answer).to.equal(true);
    });
  }
});
