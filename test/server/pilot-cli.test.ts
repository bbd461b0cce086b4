import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { allCommands, buildProgram } from '../../scripts/lib/pilot-commands.js';
import { ROOT, runBin, tempDir, testEnv } from '../helpers/env.js';
import { spawnServer, type ServerProcess } from '../helpers/process.js';

describe('Pilot at vault-CLI parity: commands, help, completion, exit codes', function () {
  this.timeout(120_000);
  let dir: string;
  let srv: ServerProcess;
  let env: Record<string, string>;
  const pilot = (args: string[], extra: Record<string, string> = {}, input?: string) => runBin('pilot', args, { ...env, ...extra }, input === undefined ? {} : { input });
  const ok = async (args: string[], extra: Record<string, string> = {}) => {
    const r = await pilot(args, extra);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).to.equal(0);
    return r;
  };

  before(async () => {
    dir = tempDir('nexus-pilot-cli');
    srv = await spawnServer(testEnv(dir));
    env = { NEXUS_DATA_DIR: dir, NEXUS_ADDR: `https://127.0.0.1:${srv.port}` };
  });
  after(async () => {
    srv?.child.kill('SIGTERM');
    await srv?.exited;
  });

  it('every command and subcommand has help text', async () => {
    const program = buildProgram('0.0.0');
    const names = allCommands(program).map((c) => c.name());
    for (const must of ['patch', 'rollback', 'purge', 'whoami', 'completion', 'revoke-tokens']) expect(names).to.include(must);
    for (const c of allCommands(program)) expect(c.description(), c.name()).to.match(/\w{3}/);
    for (const args of [['--help'], ['secret', '--help'], ['secret', 'patch', '--help'], ['oidc', 'role', '--help'], ['oidc', 'role', 'put', '--help'], ['help', 'secret']]) {
      const r = await ok(args);
      expect(r.stdout, args.join(' ')).to.match(/^Usage: pilot/);
    }
    const version = await ok(['--version']);
    expect(version.stdout.trim()).to.equal(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
  });

  it('exit 2 with one line on stderr for a usage error, at every level; exit 1 for a server or network refusal', async () => {
    const usage: string[][] = [
      [],
      ['bogus'],
      ['secret'],
      ['secret', 'bogus'],
      ['oidc', 'role', 'bogus'],
      ['secret', 'get'],
      ['secret', 'get', 'a/b', '--bogus'],
      ['policy', 'put', 'p'],
      ['secret', 'delete', 'a/b', '--versions', '1,x'],
      ['secret', 'list', '--limit', '0'],
      ['secret', 'put', 'a/b', 'novalue'],
      ['completion', 'tcsh'],
    ];
    for (const args of usage) {
      const r = await pilot(args);
      expect(r.code, `pilot ${args.join(' ')}: ${r.stderr}`).to.equal(2);
      expect(r.stderr.trim().split('\n'), r.stderr).to.have.length(1);
      expect(r.stderr).to.match(/^pilot: /);
    }
    expect((await pilot(['secret', 'get', 'a/b'], { NEXUS_FORMAT: 'yaml' })).code).to.equal(2);
    expect((await pilot(['secret', 'get', 'nope/x'])).code).to.equal(1);
    expect((await pilot(['secret', 'get', 'nope/x'], { NEXUS_ADDR: 'https://127.0.0.1:1' })).code).to.equal(1);
  });

  it('patch, rollback, delete --versions, purge, metadata --field', async () => {
    await ok(['secret', 'put', 'ops/db', 'user=u', 'pass=p1', 'old=o']);
    expect((await ok(['secret', 'patch', 'ops/db', 'pass=p2', '--remove', 'old'])).stdout).to.equal('patched ops/db: version 2\n');
    expect(JSON.parse((await ok(['--json', 'secret', 'get', 'ops/db'])).stdout).data).to.deep.equal({ user: 'u', pass: 'p2' });
    expect((await pilot(['secret', 'patch', 'ops/db', 'pass=x', '--cas', '1'])).code).to.equal(1);
    expect((await ok(['secret', 'rollback', 'ops/db', '--version', '1'])).stdout).to.equal('rolled ops/db back to version 1: now version 3\n');
    expect((await ok(['secret', 'get', 'ops/db', '--field', 'old'])).stdout).to.equal('o');
    expect((await ok(['secret', 'metadata', 'ops/db', '--field', 'current_version'])).stdout).to.equal('3');
    expect((await ok(['secret', 'delete', 'ops/db', '--versions', '1,2'])).stdout).to.equal('deleted ops/db versions 1, 2\n');
    expect((await ok(['secret', 'undelete', 'ops/db', '--versions', '1,3'])).stdout).to.equal('undeleted ops/db version 1; left alone: 3 (not deleted)\n');
    const report = JSON.parse((await ok(['secret', 'destroy', 'ops/db', '--versions', '2,9', '--json'])).stdout);
    expect(report).to.deep.equal({ path: 'ops/db', done: [2], skipped: [{ version: 9, reason: 'not_found' }] });
    expect((await ok(['secret', 'purge', 'ops/db'])).stdout).to.equal('purged ops/db: every version removed\n');
    expect((await pilot(['secret', 'metadata', 'ops/db'])).code).to.equal(1);
    expect((await ok(['secret', 'list', 'ops/'])).stdout).to.equal('(no secrets you may list)\n');
  });

  it('NEXUS_FORMAT=json is the default for --json; --limit limits', async () => {
    for (const p of ['lim/a', 'lim/b', 'lim/c']) await ok(['secret', 'put', p, 'v=1']);
    const json = await ok(['secret', 'list', 'lim/', '--limit', '2'], { NEXUS_FORMAT: 'json' });
    const page = JSON.parse(json.stdout);
    expect(page.paths).to.deep.equal(['lim/a', 'lim/b']);
    expect(page.next_cursor).to.be.a('string');
    expect((await ok(['secret', 'list', 'lim/'], { NEXUS_FORMAT: 'text' })).stdout).to.equal('lim/a\nlim/b\nlim/c\n');
  });

  it('whoami names the SVID, where it came from, and the server it authorized', async () => {
    const r = await ok(['whoami', '--json']);
    const who = JSON.parse(r.stdout);
    expect(who.spiffe_id).to.equal('spiffe://nexus.local/pilot');
    expect(who.source).to.equal(path.join(dir, 'pki', 'pilot.crt'));
    expect(who.server).to.deep.equal({ addr: env.NEXUS_ADDR, spiffe_id: 'spiffe://nexus.local/nexus' });
    expect(Date.parse(who.expires_at)).to.be.greaterThan(Date.now());
  });

  it('completion for bash (run in bash), zsh and fish, from the command tree', async () => {
    const bash = (await ok(['completion', 'bash'])).stdout;
    const file = path.join(dir, 'pilot.bash');
    fs.writeFileSync(file, bash);
    const complete = (words: string[]) =>
      execFileSync('bash', ['-c', `source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _pilot; echo "\${COMPREPLY[*]}"`], { encoding: 'utf8' }).trim();
    expect(complete(['pilot', 's']).split(' ').sort()).to.deep.equal(['secret', 'signals']);
    expect(complete(['pilot', 'se'])).to.equal('secret');
    expect(complete(['pilot', 'secret', 'p']).split(' ').sort()).to.deep.equal(['patch', 'purge', 'put']);
    expect(complete(['pilot', 'oidc', 'role', 'r'])).to.equal('revoke-tokens');
    expect(complete(['pilot', 'secret', 'get', 'app/db', '--f'])).to.equal('--field');
    const zsh = (await ok(['completion', 'zsh'])).stdout;
    expect(zsh).to.match(/^#compdef pilot/).and.include('bashcompinit').and.include('complete -F _pilot pilot');
    const fish = (await ok(['completion', 'fish'])).stdout;
    expect(fish).to.include(`complete -c pilot -n '__pilot_path_is "secret"' -a 'put patch rollback get list delete undelete destroy purge metadata'`);
    expect(fish).to.include(`complete -c pilot -n '__pilot_path_is "secret get"' -l 'field'`);
  });
});
