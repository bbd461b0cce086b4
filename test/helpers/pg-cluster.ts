// A private PostgreSQL cluster for tests that stop and start the server (so
// the shared one others use is never restarted): initdb in a temp dir, a free
// port, trust auth, the socket in the temp dir too.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './env.js';

const run = promisify(execFile);

function pgBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return null;
  const versions = fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'pg_ctl'))).sort((a, b) => Number(b) - Number(a));
  return versions.length ? path.join(root, versions[0]!, 'bin') : null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function accountOf(user: string): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([run('id', ['-u', user]), run('id', ['-g', user])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

export interface PgCluster {
  url: string;
  port: number;
  start(): Promise<void>;
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  destroy(): Promise<void>;
}

/** Null when the PostgreSQL server binaries are not installed. */
export async function createPgCluster(): Promise<PgCluster | null> {
  const bin = pgBin();
  if (!bin) return null;
  const dir = tempDir('nexus-pgc');
  const data = path.join(dir, 'data');
  // PostgreSQL refuses to run as root: then run it as the `postgres` account, owning the temp dir.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const { uid, gid } = await accountOf('postgres');
    fs.chownSync(dir, uid, gid);
  }
  const exec = (file: string, args: string[]) =>
    asRoot ? run('/usr/sbin/runuser', ['-u', 'postgres', '--', file, ...args], { env: { ...process.env, LC_ALL: 'C' } }) : run(file, args, { env: { ...process.env, LC_ALL: 'C' } });
  await exec(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=16MB -c max_connections=50`;
  const ctl = (args: string[]) => exec(path.join(bin, 'pg_ctl'), ['-D', data, '-w', '-t', '60', ...args]);
  const cluster: PgCluster = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    start: async () => {
      await ctl(['-o', opts, '-l', path.join(dir, 'log'), 'start']);
    },
    stop: async (mode = 'fast') => {
      await ctl(['-m', mode, 'stop']);
    },
    destroy: async () => {
      await ctl(['-m', 'immediate', 'stop']).catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  await cluster.start();
  return cluster;
}
