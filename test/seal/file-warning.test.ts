import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../nexus/log.js';
import { startTestServer } from '../helpers/server.js';

async function startupLog(addr: string): Promise<string> {
  const sink = new PassThrough();
  let logs = '';
  sink.on('data', (d: Buffer) => (logs += d.toString()));
  const t = await startTestServer({ NEXUS_MTLS_ADDR: addr }, { log: createLogger({ level: 'info', stream: sink }) });
  await t.stop();
  return logs;
}

describe('file seal: a loud start-up warning outside loopback', function () {
  this.timeout(30_000);

  it('warns when the mTLS port listens beyond loopback, naming the key file and the other seals', async () => {
    const logs = await startupLog('0.0.0.0:0');
    const line = logs.split('\n').find((l) => l.includes('NEXUS_SEAL=file'));
    expect(line, logs.slice(0, 500)).to.be.a('string');
    expect(JSON.parse(line!)).to.include({ level: 40, seal: 'file' });
    expect(line).to.include('use NEXUS_SEAL=shamir or pkcs11');
  });

  it('says nothing on loopback (npm start stays quiet)', async () => {
    expect(await startupLog('127.0.0.1:0')).to.not.include('NEXUS_SEAL=file');
  });
});
