import { expect } from 'chai';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { tempDir, testEnv } from '../helpers/env.js';
import { spawnServer } from '../helpers/process.js';

describe('graceful shutdown', function () {
  this.timeout(60_000);

  it('SIGTERM: an in-flight request completes, then the process exits 0', async () => {
    const dir = tempDir('nexus-shutdown');
    const srv = await spawnServer(testEnv(dir));
    const pki = path.join(dir, 'pki');
    const body = Buffer.from(JSON.stringify({ data: { v: 'written during shutdown' } }));
    // Send the headers and half the body, signal, then send the rest.
    const response = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: srv.port,
          method: 'PUT',
          path: '/v1/secrets/inflight/x',
          ca: fs.readFileSync(path.join(pki, 'ca.crt')),
          cert: fs.readFileSync(path.join(pki, 'pilot.crt')),
          key: fs.readFileSync(path.join(pki, 'pilot.key')),
          agent: false,
          headers: { 'Content-Type': 'application/json', 'Content-Length': String(body.length) },
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.write(body.subarray(0, 10));
      req.on('socket', (s) =>
        s.once('secureConnect', () =>
          setTimeout(() => {
            srv.child.kill('SIGTERM');
            setTimeout(() => req.end(body.subarray(10)), 700);
          }, 200),
        ),
      );
    });
    const res = await response;
    expect(res.status, res.text).to.equal(201);
    const exit = await srv.exited;
    expect(exit.code, srv.logs()).to.equal(0);
    expect(srv.logs()).to.include('shutting down');
    expect(srv.logs()).to.include('"msg":"stopped"');
    // New connections are refused once it has stopped, and the write is durable.
    const again = await spawnServer(testEnv(dir));
    const { call } = await import('../helpers/server.js');
    const r = await call(again.port, { ca: fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8'), cert: fs.readFileSync(path.join(pki, 'pilot.crt'), 'utf8'), key: fs.readFileSync(path.join(pki, 'pilot.key'), 'utf8') }, 'GET', '/v1/secrets/inflight/x');
    expect(r.body.data).to.deep.equal({ v: 'written during shutdown' });
    again.child.kill('SIGINT');
    expect((await again.exited).code).to.equal(0);
  });
});
