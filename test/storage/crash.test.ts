import { expect } from 'chai';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { integrityCheck } from '../../nexus/storage/db.js';
import { ROOT, openTestCore, tempDir, testEnv } from '../helpers/env.js';

interface Ack {
  path: string;
  version: number;
  value: string;
}

/** Starts the writer, lets it acknowledge writes for a random time, then SIGKILLs it. */
function writeUntilKilled(env: NodeJS.ProcessEnv, round: number, killAfterMs: number): Promise<Ack[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/helpers/crash-writer.ts'), String(round)], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acks: Ack[] = [];
    let buf = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line === 'ready') setTimeout(() => child.kill('SIGKILL'), killAfterMs);
        const m = /^ack (\S+) (\d+) (\S+)$/.exec(line);
        if (m) acks.push({ path: m[1]!, version: Number(m[2]), value: m[3]! });
      }
    });
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`writer exited ${code} ${signal}: ${stderr}`));
      else resolve(acks);
    });
  });
}

const MAX_VERSIONS = 1000;

/** The hot counter path is pruned to its last MAX_VERSIONS versions; every other ack is kept. */
async function retained(metadata: (p: string) => Promise<{ current_version: number }>): Promise<(a: Ack) => boolean> {
  const current = (await metadata('crash/counter')).current_version;
  return (a) => a.path !== 'crash/counter' || a.version > current - MAX_VERSIONS;
}

describe('crash safety', function () {
  this.timeout(120_000);

  it('every acknowledged write survives SIGKILL at random points, and the db stays intact', async () => {
    const dir = tempDir();
    const env = { ...process.env, ...testEnv(dir, { NEXUS_MAX_VERSIONS: String(MAX_VERSIONS) }) } as NodeJS.ProcessEnv;
    const all: Ack[] = [];
    for (let round = 0; round < 6; round++) {
      const acks = await writeUntilKilled(env, round, 150 + Math.floor(Math.random() * 900));
      expect(acks.length, `round ${round} acknowledged nothing`).to.be.greaterThan(0);
      all.push(...acks);
      const core = await openTestCore(dir, { NEXUS_MAX_VERSIONS: String(MAX_VERSIONS) });
      try {
        expect(integrityCheck(core.db)).to.equal('ok');
        const kept = await retained(core.secrets.metadata.bind(core.secrets));
        for (const a of acks.filter(kept)) {
          expect((await core.secrets.get(a.path, a.version)).data, `${a.path} v${a.version}`).to.deep.equal({ value: a.value });
        }
        const lastCounter = acks.filter((a) => a.path === 'crash/counter').at(-1);
        if (lastCounter) {
          // At most one write can have committed without its ack being read.
          const current = (await core.secrets.metadata('crash/counter')).current_version;
          expect(current - lastCounter.version).to.be.within(0, 1);
        }
      } finally {
        core.close();
      }
    }
    // Earlier rounds' writes are still all there at the end.
    const core = await openTestCore(dir, { NEXUS_MAX_VERSIONS: String(MAX_VERSIONS) });
    try {
      for (const a of all.filter(await retained(core.secrets.metadata.bind(core.secrets)))) expect((await core.secrets.get(a.path, a.version)).data).to.deep.equal({ value: a.value });
    } finally {
      core.close();
    }
  });
});
