import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, tempDir } from '../helpers/env.js';
import { systemTool } from '../helpers/tools.js';

const UNIT = fs.readFileSync(path.join(ROOT, 'deploy/systemd/nexus.service'), 'utf8');

/** `[Service]` settings, each key with every value it is given (a key may repeat). */
function settings(unit: string, section: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current = '';
  for (const raw of unit.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const head = line.match(/^\[(.+)\]$/);
    if (head) current = head[1]!;
    else if (current === section) {
      const i = line.indexOf('=');
      const key = line.slice(0, i);
      out.set(key, [...(out.get(key) ?? []), line.slice(i + 1)]);
    }
  }
  return out;
}

/**
 * systemd-analyze on a copy named nexus.service. verify refuses a missing
 * ExecStart binary; where Node is not /usr/bin/node the copy names this one.
 */
function analyze(tool: string, args: string[], unit: string): { code: number | null; out: string } {
  const file = path.join(tempDir('nexus-unit'), 'nexus.service');
  fs.writeFileSync(file, fs.existsSync('/usr/bin/node') ? unit : unit.replaceAll('/usr/bin/node', process.execPath));
  const r = spawnSync(tool, [...args, file], { encoding: 'utf8', env: { ...process.env, SYSTEMD_LOG_COLOR: '0' } });
  return { code: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

describe('deploy/systemd/nexus.service', () => {
  const service = settings(UNIT, 'Service');
  const one = (k: string) => service.get(k)?.at(-1);

  it('systemd-analyze verify accepts it without a warning', function () {
    const tool = systemTool(this, 'systemd-analyze', 'apt-get install -y systemd (Debian); .ci/run does');
    const r = analyze(tool, ['verify'], UNIT);
    expect(r.code, r.out).to.equal(0);
    expect(r.out).to.equal('');
    // A value systemd cannot parse is only a warning (exit 0): the empty output above is what catches it.
    const bad = analyze(tool, ['verify'], UNIT.replace('ProtectSystem=strict', 'ProtectSystem=strikt'));
    expect(bad.out).to.include('strikt');
  });

  it("systemd-analyze security rates its sandbox OK (exposure at most 2.0 of 10)", function () {
    const tool = systemTool(this, 'systemd-analyze', 'apt-get install -y systemd (Debian); .ci/run does');
    const r = analyze(tool, ['security', '--offline=yes', '--no-pager'], UNIT);
    const score = r.out.match(/Overall exposure level for nexus\.service: ([\d.]+)/);
    expect(score, r.out).to.not.equal(null);
    expect(Number(score![1])).to.be.at.most(2.0);
  });

  it('runs as a dedicated user in a state directory, sandboxed, with no capabilities, restarted on failure', () => {
    expect(one('User')).to.equal('nexus');
    expect(one('Group')).to.equal('nexus');
    expect(service.has('DynamicUser')).to.equal(false);
    expect(one('StateDirectory')).to.equal('nexus');
    expect(one('StateDirectoryMode')).to.equal('0700');
    expect(service.get('Environment')).to.include('NEXUS_DATA_DIR=/var/lib/nexus');
    expect(one('ProtectSystem')).to.equal('strict');
    expect(one('NoNewPrivileges')).to.equal('yes');
    expect(one('PrivateTmp')).to.equal('yes');
    expect(service.get('CapabilityBoundingSet')).to.deep.equal(['']);
    expect(one('Restart')).to.equal('on-failure');
    // Node's JIT needs writable and executable memory: under MemoryDenyWriteExecute it aborts.
    expect(service.has('MemoryDenyWriteExecute')).to.equal(false);
    expect(service.has('ReadWritePaths')).to.equal(false);
  });

  it('starts the compiled server the package ships (dist/, no TypeScript at run time)', () => {
    const bin = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin.nexus;
    expect(one('ExecStart')).to.equal(`/usr/bin/node /opt/nexus/${bin}`);
    expect(one('WorkingDirectory')).to.equal('/opt/nexus');
  });
});
