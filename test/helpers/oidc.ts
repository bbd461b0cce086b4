import { PassThrough } from 'node:stream';
import { createLogger } from '../../nexus/log.js';
import { OidcPlugin } from '../../plugins/oidc/plugin.js';
import { TENANT_CLAIM_PRESETS } from '../../plugins/oidc/schema.js';
import type { KeyTimings } from '../../plugins/oidc/issuers.js';
import { startIdp, type TestIdp } from './idp.js';
import { call, type Res, type TestServer, startTestServer } from './server.js';

export interface OidcEnv {
  t: TestServer;
  idp: TestIdp;
  plugin: OidcPlugin;
  port: number;
  logs(): string;
  oidc(token: string | undefined, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Res>;
  admin(method: string, path: string, body?: unknown): Promise<Res>;
  stop(): Promise<void>;
}

export const GITHUB_TENANT_CLAIMS = [...TENANT_CLAIM_PRESETS.github];

/** Nexus with the OIDC plugin on a free port, a loopback IdP, and the IdP configured as issuer `ci`. */
export async function startOidcEnv(env: Record<string, string> = {}, timings: KeyTimings = { maxAgeMs: 60_000, cooldownMs: 1_000, timeoutMs: 2_000 }): Promise<OidcEnv> {
  const idp = await startIdp();
  const sink = new PassThrough();
  let logs = '';
  sink.on('data', (d: Buffer) => (logs += d.toString()));
  const plugin = new OidcPlugin({ timings });
  const t = await startTestServer({ NEXUS_OIDC_ADDR: '127.0.0.1:0', ...env }, { plugins: [plugin], log: createLogger({ level: 'debug', stream: sink }) });
  const port = plugin.addresses().oidc!.port;
  const admin = (method: string, path: string, body?: unknown) => call(t.port, t.admin, method, path, body);
  const r = await admin('PUT', '/v1/oidc/issuers/ci', { issuer: idp.url, audiences: ['nexus'], algorithms: ['RS256', 'ES256'], tenant_claims: [...GITHUB_TENANT_CLAIMS, ...TENANT_CLAIM_PRESETS.gitlab] });
  if (r.status !== 201) throw new Error(`issuer setup failed: ${r.text}`);
  return {
    t,
    idp,
    plugin,
    port,
    logs: () => logs,
    admin,
    oidc: (token, method, path, body, headers = {}) =>
      call(port, { ca: t.caPem }, method, path, body, { headers: { ...(token === undefined ? {} : { Authorization: `Bearer ${token}` }), ...headers } }),
    stop: async () => {
      await t.stop();
      await idp.stop();
    },
  };
}
