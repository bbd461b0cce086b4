import { expect } from 'chai';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawnServer } from '../helpers/process.js';
import { runBin, tempDir, testEnv } from '../helpers/env.js';

/** A port held by another listener for the test's duration. */
async function busyPort(): Promise<{ port: number; close(): Promise<void> }> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { port: (s.address() as net.AddressInfo).port, close: () => new Promise((r) => s.close(() => r())) };
}

describe('start-up wiring mistakes surface at once, naming the setting', function () {
  this.timeout(60_000);

  for (const variable of ['NEXUS_MTLS_ADDR', 'NEXUS_OIDC_ADDR'] as const) {
    it(`a busy ${variable} fails start-up naming it, with nothing created on disk`, async () => {
      const busy = await busyPort();
      try {
        const parent = tempDir('nexus-busy');
        const dir = path.join(parent, 'data');
        const env = testEnv(dir, { NEXUS_MTLS_ADDR: '127.0.0.1:0', NEXUS_OIDC_ADDR: '127.0.0.1:0', [variable]: `127.0.0.1:${busy.port}` });
        const r = await runBin('nexus', [], env);
        expect(r.code, r.stderr).to.equal(1);
        expect(r.stderr.trim().split('\n')).to.have.length(1);
        expect(r.stderr).to.include(variable).and.include(`127.0.0.1:${busy.port}`).and.include('in use');
        expect(fs.existsSync(dir), 'the data dir was created').to.equal(false);
      } finally {
        await busy.close();
      }
    });
  }

  it('warns at start about NEXUS_* variables it does not know, suggesting the likely one; client variables are known', async () => {
    const dir = tempDir('nexus-unknown');
    const srv = await spawnServer(testEnv(dir, { NEXUS_MTLS_ADR: '127.0.0.1:9', NEXUS_FROBNICATE: '1', NEXUS_ADDR: 'https://x', NEXUS_CERT: 'c', NEXUS_FORMAT: 'json', NEXUS_SERVER_SPIFFE_ID: 'spiffe://nexus.local/nexus' }));
    try {
      const warning = srv
        .logs()
        .split('\n')
        .filter((l) => l.includes('unknown NEXUS_'))
        .map((l) => JSON.parse(l) as { level: number; variables: string[]; msg: string });
      expect(warning).to.have.length(1);
      expect(warning[0]!.level).to.equal(40);
      expect(warning[0]!.variables).to.deep.equal(['NEXUS_FROBNICATE', 'NEXUS_MTLS_ADR']);
      expect(warning[0]!.msg).to.include('NEXUS_MTLS_ADR (did you mean NEXUS_MTLS_ADDR?)');
      // Values never reach the log: an unknown variable might hold a secret.
      expect(srv.logs()).to.not.include('127.0.0.1:9');
    } finally {
      srv.child.kill('SIGTERM');
      await srv.exited;
    }
  });
});
