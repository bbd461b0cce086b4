// Several real Nexus processes on one PostgreSQL database, as an operator
// would run them: each its own data dir and replica id, one root key, one
// PKI (the first replica's dev PKI, given to the others as NEXUS_TLS_*).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Env } from '../../nexus/config/index.js';
import { tempDir } from './env.js';
import { spawnServer, type ServerProcess } from './process.js';
import { call, type ClientCreds, type Res } from './server.js';

export interface Replica {
  id: string;
  dir: string;
  proc: ServerProcess;
  /** mTLS request as the built-in admin (or `creds`). */
  call(method: string, p: string, body?: unknown, creds?: ClientCreds): Promise<Res>;
  /** A request to the OIDC port. */
  oidc(token: string | undefined, method: string, p: string, body?: unknown): Promise<Res>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface ReplicaSet {
  rootKey: string;
  pki: string;
  admin: ClientCreds;
  replicas: Replica[];
  start(id: string, extra?: Env): Promise<Replica>;
  stop(): Promise<void>;
}

export async function startReplicas(databaseUrl: string, ids: string[], extra: Env = {}): Promise<ReplicaSet> {
  const rootKey = randomBytes(32).toString('base64');
  const replicas: Replica[] = [];
  let pki = '';
  let admin: ClientCreds | null = null;
  const start = async (id: string, more: Env = {}): Promise<Replica> => {
    const dir = tempDir(`nexus-rep-${id}`);
    const tls: Env = pki ? { NEXUS_TLS_CA: path.join(pki, 'ca.crt'), NEXUS_TLS_CERT: path.join(pki, 'server.crt'), NEXUS_TLS_KEY: path.join(pki, 'server.key') } : {};
    const proc = await spawnServer({
      NEXUS_DATA_DIR: dir,
      NEXUS_DATABASE_URL: databaseUrl,
      NEXUS_ROOT_KEY: rootKey,
      NEXUS_REPLICA_ID: id,
      NEXUS_OIDC_ADDR: '127.0.0.1:0',
      ...tls,
      ...extra,
      ...more,
    });
    if (!pki) {
      pki = path.join(dir, 'pki');
      const ca = fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8');
      admin = { ca, cert: fs.readFileSync(path.join(pki, 'pilot.crt'), 'utf8'), key: fs.readFileSync(path.join(pki, 'pilot.key'), 'utf8') };
    }
    const r: Replica = {
      id,
      dir,
      proc,
      call: (method, p, body, creds) => call(proc.port, creds ?? admin!, method, p, body),
      oidc: (token, method, p, body) => call(proc.oidcPort!, { ca: admin!.ca }, method, p, body, { headers: token ? { Authorization: `Bearer ${token}` } : {} }),
      kill: async (signal = 'SIGTERM') => {
        if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill(signal);
        await proc.exited;
      },
    };
    replicas.push(r);
    return r;
  };
  for (const id of ids) await start(id);
  return {
    rootKey,
    get pki() {
      return pki;
    },
    get admin() {
      return admin!;
    },
    replicas,
    start,
    stop: async () => {
      await Promise.all(replicas.map((r) => r.kill()));
    },
  };
}

/** Polls `probe` until it returns true or `ms` pass; resolves with the time it took (ms), or rejects. */
export async function within(ms: number, probe: () => Promise<boolean>, what: string): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await probe()) return Date.now() - t0;
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
