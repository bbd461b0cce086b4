import { expect } from 'chai';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ROOT, tempDir } from '../helpers/env.js';
import { createTestDatabase, requirePg, type TestDatabase } from '../helpers/pg.js';

/** The sh block of README.md's "Running several replicas", one command a line (continuations joined, comments dropped). */
function replicaSnippet(): string[] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Running several replicas\n'));
  const m = /^```sh\n([\s\S]*?)^```$/m.exec(section);
  expect(m, 'README.md: a sh block under "Running several replicas"').to.not.equal(null);
  return m![1]!
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.replace(/(^|\s)#.*$/, '').trim())
    .filter(Boolean);
}

/** Pilot, as `npx pilot` or as the installed `pilot`. */
const PILOT = /(^|\s)(?:npx )?pilot(?=\s)/;

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * The README's snippet, run as written on one host: the same shell lines in a
 * fresh directory, against a fresh database on the test server (its URL in
 * place of the README's), `npm start` and `npx pilot` as this tree's bins, and
 * free ports in place of the README's (the defaults, 8553 and 8554, stand for
 * the first replica's).
 */
describe('README "Running several replicas": the snippet runs as written on one host, and Pilot reaches both replicas', function () {
  this.timeout(90_000);
  let db: TestDatabase;
  let dir: string;
  const servers: ChildProcessWithoutNullStreams[] = [];

  before(async function () {
    db = await createTestDatabase(await requirePg(this));
    dir = tempDir('nexus-readme-replicas');
  });
  after(async () => {
    for (const s of servers) {
      if (s.exitCode === null && s.signalCode === null) {
        s.kill('SIGTERM');
        await new Promise((r) => s.once('close', r));
      }
    }
    await db?.drop();
  });

  it('starts both replicas, each on its own ports with the first one\'s PKI and root key; a secret written through one is read through the other', async () => {
    const ports = new Map<string, string>();
    for (const p of ['8553', '8554', '8563', '8564']) ports.set(p, String(await freePort()));
    const local = (line: string) =>
      line
        .replace(/postgres:\/\/\S+/g, db.url)
        .replace(/127\.0\.0\.1:(85\d\d)\b/g, (m, p: string) => (ports.has(p) ? `127.0.0.1:${ports.get(p)}` : m))
        .replace(/\bnpm start$/, `exec ${process.execPath} ${path.join(ROOT, 'scripts/bin/nexus.js')}`)
        .replace(new RegExp(PILOT, 'g'), `$1${process.execPath} ${path.join(ROOT, 'scripts/bin/pilot.js')}`);
    const base = {
      PATH: process.env.PATH!,
      HOME: process.env.HOME!,
      NEXUS_LOG_LEVEL: 'info',
      NEXUS_MTLS_ADDR: `127.0.0.1:${ports.get('8553')}`,
      NEXUS_OIDC_ADDR: `127.0.0.1:${ports.get('8554')}`,
      NEXUS_ADDR: `https://127.0.0.1:${ports.get('8553')}`,
    };
    const exports: string[] = [];
    const outputs: string[] = [];
    let started = 0;
    let pilots = 0;
    for (const line of replicaSnippet()) {
      if (/^createdb\b/.test(line)) continue; // the test made its own
      if (/^export\b/.test(line)) {
        exports.push(local(line));
        continue;
      }
      const script = [...exports, local(line)].join('\n');
      if (/\bnpm start$/.test(line)) {
        const child = spawn('bash', ['-e', '-c', script], { cwd: dir, env: base });
        servers.push(child);
        let log = '';
        child.stdout.on('data', (d: Buffer) => (log += d.toString()));
        child.stderr.on('data', (d: Buffer) => (log += d.toString()));
        // Ready when both ports are bound; a replica that dies (EADDRINUSE, a key it refuses) fails here.
        await new Promise<void>((resolve, reject) => {
          const timer = setInterval(() => {
            if (/"port":"mtls"/.test(log) && /"port":"oidc"/.test(log)) {
              clearInterval(timer);
              resolve();
            }
          }, 50);
          child.once('close', (code) => {
            clearInterval(timer);
            reject(new Error(`README.md: "${line}" exited (${code}) before listening:\n${log}`));
          });
        });
        started++;
        continue;
      }
      const r = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const child = spawn('bash', ['-e', '-c', script], { cwd: dir, env: base });
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('close', (code) => resolve({ code, out, err }));
      });
      expect(r.code, `README.md: "${line}": ${r.err}`).to.equal(0);
      if (PILOT.test(line)) pilots++;
      outputs.push(r.out);
    }
    expect(started, 'replicas started by the snippet').to.equal(2);
    expect(pilots, 'Pilot commands in the snippet').to.be.at.least(2);
    const lines = replicaSnippet();
    const readThroughB = lines.findIndex((l) => /pilot secret get\b/.test(l) && l.includes(':8563'));
    expect(readThroughB, 'the snippet reads through the second replica').to.be.greaterThan(-1);
    const written = /pilot secret put (\S+) (\w+)=(\S+)/.exec(lines.join('\n'));
    expect(written, 'the snippet writes a secret').to.not.equal(null);
    expect(outputs.at(-1)!.trim()).to.equal(written![3]);
  });
});
