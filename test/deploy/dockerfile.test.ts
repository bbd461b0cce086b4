import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, runNode } from '../helpers/env.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';

// docker is not available where these tests run: the Dockerfile is parsed and
// its properties asserted; the one program it adds (the HEALTHCHECK) runs for real.

interface Instruction { op: string; args: string }
interface Stage { from: string; name?: string; steps: Instruction[] }

/** Instructions (continuation lines joined, comments dropped), grouped by stage. */
function parseDockerfile(text: string): { args: Instruction[]; stages: Stage[] } {
  const joined = text.split('\n').filter((l) => !/^\s*#/.test(l)).join('\n').replace(/\\\n/g, ' ');
  const global: Instruction[] = [];
  const stages: Stage[] = [];
  for (const line of joined.split('\n')) {
    const m = line.trim().match(/^([A-Za-z]+)\s+(.*)$/);
    if (!m) continue;
    const ins = { op: m[1]!.toUpperCase(), args: m[2]!.replace(/\s+/g, ' ').trim() };
    if (ins.op === 'FROM') {
      const f = ins.args.match(/^(\S+)(?: AS (\S+))?$/i)!;
      stages.push({ from: f[1]!, name: f[2], steps: [] });
    } else (stages.at(-1)?.steps ?? global).push(ins);
  }
  return { args: global, stages };
}

// Docker's .dockerignore matching: from the root, `*` within a name, `**/` at any depth, and a directory takes what is under it.
function dockerIgnored(patterns: string[]): (file: string) => boolean {
  const res = patterns.map((p) => {
    const body = p
      .replace(/^\//, '')
      .split(/(\*\*\/|\*|\?)/)
      .map((part) => (part === '**/' ? '(?:.*/)?' : part === '*' ? '[^/]*' : part === '?' ? '[^/]' : part.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
      .join('');
    return new RegExp(`^${body}(?:/.*)?$`);
  });
  return (file) => res.some((r) => r.test(file));
}

const DOCKERFILE = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const { stages } = parseDockerfile(DOCKERFILE);
const [build, runtime] = [stages.find((s) => s.name === 'build')!, stages.at(-1)!];
const all = (s: Stage, op: string) => s.steps.filter((i) => i.op === op).map((i) => i.args);

describe('Dockerfile', () => {
  it('is multi-stage: a build stage compiles dist/, the runtime stage copies only what runs', () => {
    expect(stages.length).to.be.at.least(2);
    expect(build, 'a stage named build').to.not.equal(undefined);
    expect(runtime).to.not.equal(build);
    const buildRuns = all(build, 'RUN').join('\n');
    expect(buildRuns).to.include('npm ci').and.include('npm run build').and.include('npm prune --omit=dev');
    expect(all(runtime, 'RUN').join('\n')).to.not.match(/npm (ci|install|run build)/);
    const copies = all(runtime, 'COPY');
    expect(copies).to.include('--from=build /src/dist ./dist');
    expect(copies).to.include('--from=build /src/node_modules ./node_modules');
    // No source tree in the runtime image: every COPY there names what it takes.
    expect(copies.filter((c) => /^\.\s|\s\.\s*$/.test(c) && !c.startsWith('--from'))).to.deep.equal([]);
  });

  it('runs the compiled server (no TypeScript at run time) as a non-root user', () => {
    const bin = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin.nexus!;
    expect(all(runtime, 'CMD')).to.deep.equal([`["node", "${bin}"]`]);
    const user = all(runtime, 'USER').at(-1);
    expect(user, 'USER in the runtime stage').to.be.a('string');
    expect(user!.split(':')[0]).to.not.be.oneOf(['root', '0', '']);
    expect(all(runtime, 'RUN').join('\n')).to.include(`useradd --system --uid ${user!.split(':')[0]}`);
  });

  it('keeps the data dir in a volume, owned by that user', () => {
    const env = all(runtime, 'ENV').join(' ');
    const dataDir = env.match(/NEXUS_DATA_DIR=(\S+)/)?.[1];
    expect(dataDir).to.equal('/var/lib/nexus');
    expect(all(runtime, 'VOLUME')).to.deep.equal([`["${dataDir}"]`]);
    expect(all(runtime, 'RUN').join('\n')).to.include(`chown nexus:nexus ${dataDir}`).and.include(`chmod 0700 ${dataDir}`);
    expect(all(runtime, 'EXPOSE')).to.deep.equal(['8553 8554']);
  });

  it('has a HEALTHCHECK running a script the image contains', () => {
    const hc = all(runtime, 'HEALTHCHECK');
    expect(hc).to.have.length(1);
    const script = hc[0]!.match(/CMD \["node", "([^"]+)"\]$/)?.[1];
    expect(script).to.equal('deploy/docker/healthcheck.mjs');
    expect(all(runtime, 'COPY')).to.include(`${script} ./${script}`);
    expect(fs.existsSync(path.join(ROOT, script!))).to.equal(true);
  });

  it('.dockerignore keeps keys, data dirs and local builds out of the build context, and what the build reads in', () => {
    const patterns = fs.readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const ignored = dockerIgnored(patterns);
    // Docker anchors a pattern at the context's root: `dist` alone would not reach scripts/ci/dist, `*.key` no key below the root.
    for (const p of ['node_modules/x/index.js', 'dist/bin/nexus.js', '.nexus/root.key', 'a/b/.nexus-a/nexus.db', 'etc/root.key', 'x.key', 'data/nexus.db-wal', 'test/x.test.ts', '.git/HEAD']) {
      expect(ignored(p), p).to.equal(true);
    }
    // What scripts/build.mjs and tsc read, from the committed tree.
    const tracked = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
    const needed = tracked.filter((f) => /^(nexus|plugins|scripts|migrations)\//.test(f) || ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'deploy/docker/healthcheck.mjs'].includes(f));
    expect(needed.filter((f) => f.startsWith('scripts/ci/dist/'))).to.not.be.empty;
    expect(needed.filter(ignored), 'needed by the build but not in the context').to.deep.equal([]);
  });

  describe('the HEALTHCHECK script against a real server', function () {
    this.timeout(30_000);
    let e: OidcEnv;
    before(async () => {
      e = await startOidcEnv();
    });
    after(() => e?.stop());
    const healthcheck = (addr: string) => runNode([path.join(ROOT, 'deploy/docker/healthcheck.mjs')], { NEXUS_OIDC_ADDR: addr });

    it('exits 0 when /healthz answers', async () => {
      const r = await healthcheck(`0.0.0.0:${e.port}`);
      expect(r.code, r.stderr).to.equal(0);
    });

    it('exits 1 when nothing listens, or the OIDC port is off', async () => {
      await e.t.stop();
      const down = await healthcheck(`0.0.0.0:${e.port}`);
      expect(down.code).to.equal(1);
      expect(down.stderr).to.match(/ECONNREFUSED/);
      const off = await healthcheck('off');
      expect(off.code).to.equal(1);
      expect(off.stderr).to.include('NEXUS_OIDC_ADDR=off');
    });
  });
});
