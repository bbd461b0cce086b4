import { expect } from 'chai';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT, runBin } from '../helpers/env.js';
import { startShamirServer, type ShamirServer } from '../helpers/seal.js';

/** Pilot on a pseudo-terminal (util-linux `script`): `type` is written once the prompt is shown. */
function pilotOnPty(args: string[], env: Record<string, string>, type: string): Promise<{ code: number | null; output: string }> {
  const cmd = [process.execPath, path.join(ROOT, 'scripts/bin/pilot.js'), ...args].map((a) => `'${a}'`).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qefc', cmd, '/dev/null'], { env: { PATH: process.env.PATH, HOME: process.env.HOME, TERM: 'dumb', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let typed = false;
    const onOut = (d: Buffer) => {
      output += d.toString();
      if (!typed && output.includes('Unseal share')) {
        typed = true;
        // Raw mode is set right after the prompt is written: give it a moment before typing.
        setTimeout(() => child.stdin.write(`${type}\r`), 300);
      }
    };
    child.stdout.on('data', onOut);
    child.stderr.on('data', onOut);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('pilot operator: seal-status, unseal (prompt without echo, or stdin), seal', function () {
  this.timeout(60_000);
  let s: ShamirServer;
  let env: Record<string, string>;
  const pilot = (args: string[], input?: string) => runBin('pilot', args, env, input === undefined ? {} : { input });

  before(async () => {
    s = await startShamirServer();
    env = { NEXUS_DATA_DIR: s.dir, NEXUS_ADDR: `https://127.0.0.1:${s.t.port}` };
  });
  after(() => s?.t.stop());

  it('seal-status says sealed, and how far', async () => {
    const r = await pilot(['operator', 'seal-status']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout.trim()).to.equal('sealed (shamir): 0 of 3 shares given');
    const j = JSON.parse((await pilot(['operator', 'seal-status', '--json'])).stdout);
    expect(j).to.include({ sealed: true, threshold: 3, shares: 5, progress: 0 });
  });

  it('a share typed at the prompt is not echoed; shares on stdin work; a bad one is a clear error', async () => {
    const share = s.shares[0]!;
    const tty = await pilotOnPty(['operator', 'unseal'], env, share);
    expect(tty.code, tty.output).to.equal(0);
    expect(tty.output).to.include('Unseal share (not echoed):');
    expect(tty.output).to.include('1 of 3 shares given');
    expect(tty.output).to.not.include(share.slice(5, 25));
    const bad = await pilot(['operator', 'unseal'], 'nxs1-nonsense\n');
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.match(/^pilot: bad request: not a Nexus unseal share/);
    const two = await pilot(['operator', 'unseal'], `${s.shares[1]}\n`);
    expect(two.stdout.trim()).to.equal('sealed (shamir): 2 of 3 shares given');
    const three = await pilot(['operator', 'unseal'], `${s.shares[2]}\n`);
    expect(three.code, three.stderr).to.equal(0);
    expect(three.stdout.trim()).to.equal('unsealed (shamir seal)');
  });

  it('seal seals a running Nexus: reads answer 503 sealed', async () => {
    expect((await pilot(['secret', 'put', 'app/x', 'a=b'])).code).to.equal(0);
    const r = await pilot(['operator', 'seal']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout.trim()).to.equal('sealed (shamir): 0 of 3 shares given');
    const read = await pilot(['secret', 'get', 'app/x']);
    expect(read.code).to.equal(1);
    expect(read.stderr).to.match(/^pilot: unavailable: Nexus is sealed/);
  });
});
