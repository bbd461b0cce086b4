import type { AuthPlugin } from '../../nexus/auth/plugin.js';
import type { Env } from '../../nexus/config/index.js';
import { runBin, tempDir, testEnv, type RunResult } from './env.js';
import { call, startTestServer, type TestServer } from './server.js';

/** `nexus-operator init --json` in `dir`; throws with its stderr on failure. */
export async function operatorInit(dir: string, env: Env, shares = 5, threshold = 3): Promise<{ shares: string[]; run: RunResult }> {
  const run = await runBin('nexus-operator', ['init', '--shares', String(shares), '--threshold', String(threshold), '--json'], testEnv(dir, env));
  if (run.code !== 0) throw new Error(`nexus-operator init failed: ${run.stderr}`);
  return { shares: (JSON.parse(run.stdout) as { shares: string[] }).shares, run };
}

export interface ShamirServer {
  t: TestServer;
  dir: string;
  shares: string[];
  /** Gives `threshold` shares through the API (as `creds`, default admin). */
  unseal(n?: number): Promise<void>;
}

/** A test server in shamir mode (init 5/3), started sealed. */
export async function startShamirServer(extra: Env = {}, opts: { plugins?: AuthPlugin[]; dir?: string } = {}): Promise<ShamirServer> {
  const dir = opts.dir ?? tempDir('nexus-shamir');
  const env = { NEXUS_SEAL: 'shamir', ...extra };
  const { shares } = await operatorInit(dir, env);
  const t = await startTestServer(env, { dir, plugins: opts.plugins });
  return {
    t,
    dir,
    shares,
    unseal: async (n = 3) => {
      for (const key of shares.slice(0, n)) {
        const r = await call(t.port, t.admin, 'PUT', '/v1/sys/unseal', { key });
        if (r.status !== 200) throw new Error(`unseal: ${r.text}`);
      }
    },
  };
}
