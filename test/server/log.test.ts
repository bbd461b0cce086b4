import { expect } from 'chai';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../nexus/log.js';
import { ROOT, tempDir } from '../helpers/env.js';

describe('server log: a line that cannot be written never crashes the process', function () {
  this.timeout(30_000);

  it('stdout on a full device (/dev/full): every line fails with ENOSPC, the process carries on and exits 0', async function () {
    if (!fs.existsSync('/dev/full')) this.skip();
    const out = fs.openSync('/dev/full', 'w');
    const script = "import { createLogger } from './nexus/log.ts'; const log = createLogger({ level: 'info' }); for (let i = 0; i < 50; i++) log.info({ i }, 'line'); await new Promise((r) => setTimeout(r, 50)); log.error('still here'); process.stderr.write('alive');";
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', out, 'pipe'] });
    fs.closeSync(out);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, err).to.equal(0);
    expect(err).to.equal('alive');
  });

  it('a stream that fails (a closed pipe) is dropped from, never thrown from', async () => {
    const failing = new Writable({ write: (_chunk, _enc, cb) => cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })) });
    const log = createLogger({ level: 'info', stream: failing });
    for (let i = 0; i < 5; i++) log.info({ i }, 'line');
    await new Promise((r) => setImmediate(r));
    log.info('after the stream failed');
    expect(failing.destroyed).to.equal(true);
  });

  it('on a file: a line torn by a full disk stays on a line of its own, and the first line that fits says how many were lost', () => {
    const file = path.join(tempDir('nexus-log'), 'nexus.log');
    const fd = fs.openSync(file, 'a');
    const stream = Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { fd });
    const log = createLogger({ level: 'info', stream });
    log.info('before');
    const orig = fs.writeSync;
    let calls = 0;
    // The disk fills up: the first write takes 10 bytes, then nothing more fits.
    (fs as { writeSync: unknown }).writeSync = (f: number, buf: Buffer, off: number, len: number) => {
      if (++calls === 1) return orig(f, buf, off, Math.min(len, 10));
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    };
    try {
      log.info('torn');
      log.info('lost');
    } finally {
      (fs as { writeSync: unknown }).writeSync = orig;
    }
    log.info('after');
    fs.closeSync(fd);
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    expect(lines.pop()).to.equal('');
    expect(lines).to.have.length(4);
    expect(JSON.parse(lines[0]!).msg).to.equal('before');
    expect(lines[1]).to.have.length(10);
    const notice = JSON.parse(lines[2]!) as { level: number; dropped: number; reason: string; msg: string };
    expect(notice).to.include({ level: 40, dropped: 2, reason: 'ENOSPC' });
    expect(notice.msg).to.equal('2 log line(s) could not be written (ENOSPC)');
    expect(JSON.parse(lines[3]!).msg).to.equal('after');
  });
});
