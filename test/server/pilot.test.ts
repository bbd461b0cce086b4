import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { runBin, tempDir, testEnv } from '../helpers/env.js';
import { spawnServer, type ServerProcess } from '../helpers/process.js';

describe('Pilot end to end (real bins, real server process)', function () {
  this.timeout(60_000);
  let dir: string;
  let srv: ServerProcess;
  let env: Record<string, string>;
  const pilot = (args: string[], extra: Record<string, string> = {}, input?: string) => runBin('pilot', args, { ...env, ...extra }, input === undefined ? {} : { input });

  before(async () => {
    dir = tempDir('nexus-pilot');
    srv = await spawnServer(testEnv(dir));
    env = { NEXUS_DATA_DIR: dir, NEXUS_ADDR: `https://127.0.0.1:${srv.port}` };
  });
  after(async () => {
    srv?.child.kill('SIGTERM');
    await srv?.exited;
  });

  it('puts and gets a secret, with --json and --field', async () => {
    const put = await pilot(['secret', 'put', 'app/db', 'user=admin', 'pass=s3cr3t=x']);
    expect(put.code, put.stderr).to.equal(0);
    expect(put.stdout.trim()).to.equal('wrote app/db version 1');
    const human = await pilot(['secret', 'get', 'app/db']);
    expect(human.stdout).to.match(/app\/db \(version 1, created .*\)\n\s+user\s+admin\n\s+pass\s+s3cr3t=x/);
    const field = await pilot(['secret', 'get', 'app/db', '--field', 'pass']);
    expect(field.stdout).to.equal('s3cr3t=x'); // bare: no newline when stdout is not a terminal
    const json = await pilot(['--json', 'secret', 'get', 'app/db']);
    expect(JSON.parse(json.stdout)).to.deep.include({ path: 'app/db', version: 1, data: { user: 'admin', pass: 's3cr3t=x' } });
    const jsonAfter = await pilot(['secret', 'get', 'app/db', '--json']);
    expect(JSON.parse(jsonAfter.stdout).data.user).to.equal('admin');
  });

  it('reads values from files and JSON from stdin', async () => {
    const f = path.join(dir, 'cert.pem');
    fs.writeFileSync(f, 'line1\nline2\n');
    expect((await pilot(['secret', 'put', 'app/tls', 'pem=@' + f])).code).to.equal(0);
    expect((await pilot(['secret', 'get', 'app/tls', '--field', 'pem'])).stdout).to.equal('line1\nline2\n');
    const stdin = await pilot(['secret', 'put', 'app/json', '--json', '-'], {}, '{"a":"1","b":"2"}');
    expect(stdin.code, stdin.stderr).to.equal(0);
    expect(JSON.parse(stdin.stdout)).to.deep.equal({ path: 'app/json', version: 1 });
    expect(JSON.parse((await pilot(['--json', 'secret', 'get', 'app/json'])).stdout).data).to.deep.equal({ a: '1', b: '2' });
    // As vault kv put PATH -: a lone "-" is the input; --json only shapes the output.
    const plain = await pilot(['secret', 'put', 'app/json', '-'], {}, '{"a":"3"}');
    expect(plain.code, plain.stderr).to.equal(0);
    expect(plain.stdout.trim()).to.equal('wrote app/json version 2');
    const patched = await pilot(['secret', 'patch', 'app/json', '-'], {}, '{"b":"4","a":null}');
    expect(patched.code, patched.stderr).to.equal(0);
    expect(JSON.parse((await pilot(['--json', 'secret', 'get', 'app/json'])).stdout).data).to.deep.equal({ b: '4' });
  });

  it('secret list is segment-aware and one level deep, as vault kv list; -r lists every path below', async () => {
    for (const p of ['seg/x', 'seg/sub/deep/z', 'seg/sub/y', 'segment/w', 'seg-other/v']) expect((await pilot(['secret', 'put', p, 'k=v'])).code).to.equal(0);
    for (const prefix of ['seg', 'seg/']) {
      const r = await pilot(['secret', 'list', prefix]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout.trim().split('\n'), prefix).to.deep.equal(['seg/sub/', 'seg/x']);
    }
    expect((await pilot(['secret', 'list', 'seg', '-r'])).stdout.trim().split('\n')).to.deep.equal(['seg/sub/deep/z', 'seg/sub/y', 'seg/x']);
    expect(JSON.parse((await pilot(['--json', 'secret', 'list', 'seg/sub', '--recursive'])).stdout).paths).to.deep.equal(['seg/sub/deep/z', 'seg/sub/y']);
    expect(JSON.parse((await pilot(['--json', 'secret', 'list', 'seg/sub'])).stdout).paths).to.deep.equal(['seg/sub/deep/', 'seg/sub/y']);
    // a leaf is not a folder
    expect((await pilot(['secret', 'list', 'seg/x'])).stdout).to.equal('(no secrets you may list)\n');
    const bad = await pilot(['secret', 'list', 'seg//x']);
    expect(bad.code).to.equal(2);
  });

  it('lists, shows metadata, deletes, undeletes, destroys', async () => {
    await pilot(['secret', 'put', 'app/db', 'user=two']);
    expect((await pilot(['secret', 'list', 'app/'])).stdout.trim().split('\n')).to.deep.equal(['app/db', 'app/json', 'app/tls']);
    expect(JSON.parse((await pilot(['--json', 'secret', 'list', '-r'])).stdout).paths).to.include('app/db');
    expect(JSON.parse((await pilot(['--json', 'secret', 'list'])).stdout).paths).to.include('app/').and.not.include('app/db');
    expect((await pilot(['secret', 'delete', 'app/db'])).code).to.equal(0);
    expect((await pilot(['secret', 'get', 'app/db'])).code).to.equal(1);
    expect((await pilot(['secret', 'undelete', 'app/db', '--versions', '2'])).code).to.equal(0);
    expect((await pilot(['secret', 'get', 'app/db', '--field', 'user'])).stdout).to.equal('two');
    expect((await pilot(['secret', 'destroy', 'app/db', '--versions', '1'])).code).to.equal(0);
    const md = JSON.parse((await pilot(['--json', 'secret', 'metadata', 'app/db'])).stdout);
    expect(md.versions.map((v: { destroyed: boolean }) => v.destroyed)).to.deep.equal([true, false]);
    expect((await pilot(['secret', 'metadata', 'app/db'])).stdout).to.match(/v1 .* destroyed/);
  });

  it('a second SVID, a policy, a denied and an allowed read', async () => {
    const issued = await runBin('nexus-pki', ['issue', '--spiffe-id', 'spiffe://nexus.local/ci/reader', '--out', path.join(dir, 'ci')], env);
    expect(issued.code, issued.stderr).to.equal(0);
    const reader = { NEXUS_CERT: path.join(dir, 'ci/reader.crt'), NEXUS_KEY: path.join(dir, 'ci/reader.key') };
    const denied = await pilot(['secret', 'get', 'app/db'], reader);
    expect(denied.code).to.equal(1);
    expect(denied.stderr.trim()).to.equal('pilot: permission denied: read on app/db');
    const pol = await pilot(['policy', 'put', 'ci-read', '--spiffe-id', 'spiffe://nexus.local/ci/*', '--path', 'app/**', '--path', 'shared/*', '--perm', 'read,list']);
    expect(pol.code, pol.stderr).to.equal(0);
    expect((await pilot(['secret', 'get', 'app/db', '--field', 'user'], reader)).stdout).to.equal('two');
    expect((await pilot(['secret', 'put', 'app/db', 'x=y'], reader)).stderr).to.match(/permission denied: write on app\/db/);
    expect(JSON.parse((await pilot(['--json', 'policy', 'get', 'ci-read'])).stdout).paths).to.deep.equal(['app/**', 'shared/*']);
    expect((await pilot(['policy', 'list'])).stdout).to.include('ci-read');
    expect((await pilot(['policy', 'delete', 'ci-read'])).code).to.equal(0);
    expect((await pilot(['secret', 'get', 'app/db'], reader)).code).to.equal(1);
  });

  it('every failure exits non-zero with one line on stderr', async () => {
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['secret', 'get', 'nope/x'], {}, /^pilot: not found: secret nope\/x not found$/],
      [['secret', 'put', 'app/db', 'a=b', '--cas', '0'], {}, /^pilot: conflict: secret app\/db already exists/],
      [['secret', 'get', 'app/db'], { NEXUS_ADDR: 'https://127.0.0.1:1' }, /^pilot: cannot reach Nexus at https:\/\/127\.0\.0\.1:1: connection refused/],
      [['secret', 'get', 'app/db'], { NEXUS_CERT: path.join(dir, 'missing.crt') }, /^pilot: client certificate not found at .*missing\.crt \(set NEXUS_CERT/],
      [['secret', 'get', 'a/../b'], {}, /^pilot: bad request: path segments must not be "\." or "\.\."$/],
    ];
    for (const [args, extra, re] of cases) {
      const r = await pilot(args, extra);
      expect(r.code, args.join(' ')).to.equal(1);
      expect(r.stderr.trim().split('\n'), r.stderr).to.have.length(1);
      expect(r.stderr.trim()).to.match(re);
      expect(r.stdout).to.equal('');
    }
  });
});
