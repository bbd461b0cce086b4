// Database credentials: minting rate and p99 of GET /v1/db/creds (a real
// CREATE ROLE each) beside a bare CREATE ROLE + DROP ROLE loop over one pg
// connection in the same run; and the sweeper's lag after expiry with 1,000
// active leases.
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createTarget, type Target } from '../helpers/dbcreds.js';
import { pgServerUrl } from '../helpers/pg.js';
import { call, startTestServer, type TestServer } from '../helpers/server.js';
import { measure, type BenchRow } from './report.js';

async function bareLoop(target: Target, n: number) {
  const u = new URL(target.url);
  const c = new pg.Client({ host: u.hostname, port: Number(u.port), database: u.pathname.slice(1), user: target.admin, password: target.adminPassword });
  await c.connect();
  try {
    const until = new Date(Date.now() + 600_000).toISOString();
    return await measure(n, async () => {
      const name = `b_${target.tag}_${randomBytes(6).toString('hex')}`;
      await c.query(`CREATE ROLE ${c.escapeIdentifier(name)} LOGIN PASSWORD ${c.escapeLiteral(randomBytes(24).toString('base64url'))} VALID UNTIL ${c.escapeLiteral(until)}`);
      await c.query(`DROP ROLE ${c.escapeIdentifier(name)}`);
    });
  } finally {
    await c.end();
  }
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
}

export async function leasesBench(scale: number): Promise<BenchRow[]> {
  const server = await pgServerUrl();
  if (!server) {
    console.log('leases bench skipped: no PostgreSQL (set NEXUS_TEST_DATABASE_URL)');
    return [];
  }
  const target = await createTarget(server);
  let t: TestServer | null = null;
  try {
    // One caller mints them all: the per-caller lease cap is lifted for the measurement.
    t = await startTestServer({ NEXUS_DB_MAX_LEASES_PER_CALLER: '10000' });
    const role = `b${target.tag}`;
    const admin = (method: string, p: string, body?: unknown) => call(t!.port, t!.admin, method, p, body);
    await admin('PUT', '/v1/db/connections/bench', { url: target.url, username: target.admin, password: target.adminPassword, allowed_roles: [role] });
    await admin('PUT', `/v1/db/roles/${role}`, { connection: 'bench', creation_statements: ['CREATE ROLE {{name}} LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}'], max_ttl_s: 3600 });
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ...t.admin });
    const creds = (q = '') => call(t!.port, t!.admin, 'GET', `/v1/db/creds/${role}${q}`, undefined, { agent });
    const n = Math.round(200 * scale);
    await bareLoop(target, 20);
    for (let i = 0; i < 10; i++) await creds();
    const bare = await bareLoop(target, n);
    const minted = await measure(n, async () => {
      const r = await creds();
      if (r.status !== 200) throw new Error(`db/creds: ${r.status} ${r.text}`);
    });
    const cleared = await admin('PUT', '/v1/leases/revoke-prefix', { prefix: `db/creds/${role}` });
    if (cleared.status !== 200 || cleared.body.failed !== 0) throw new Error(`revoke-prefix: ${cleared.text}`);

    // 1,000 leases expiring over the minting's own spread: how long after its expiry is each user gone?
    // Long enough that minting (about a minute here) is over before most expire: the lag is the sweeper's, not contention with minting.
    const ttl = 60;
    const ends = new Map<string, number>();
    for (let i = 0; i < 1000; i++) {
      const r = await creds(`?ttl=${ttl}`);
      if (r.status !== 200) throw new Error(`db/creds: ${r.status} ${r.text}`);
      ends.set(r.body.username, Date.now() + ttl * 1000);
    }
    const gone = new Map<string, number>();
    const probe = new pg.Client({ connectionString: server });
    await probe.connect();
    try {
      const deadline = Date.now() + ttl * 1000 + 120_000;
      while (gone.size < ends.size && Date.now() < deadline) {
        const left = new Set((await probe.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)', [`v_${role}`])).rows.map((r) => r.rolname));
        const now = Date.now();
        for (const u of ends.keys()) if (!left.has(u) && !gone.has(u)) gone.set(u, now);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await probe.end();
    }
    // A user gone early would be a bug, not a fast sweep: lag counts from the lease end as the client saw it (an upper bound).
    const lags = [...ends].map(([u, end]) => ((gone.get(u) ?? Infinity) - end) / 1000);
    const p99 = percentile(lags, 0.99);
    agent.destroy();
    return [
      {
        scenario: 'db/creds: credentials minted over mTLS (a real CREATE ROLE each, lease row first)',
        unit: 'req/s',
        ...minted,
        baseline: { name: 'bare CREATE ROLE + DROP ROLE, one pg connection', rate: bare.rate },
        aim: { minRatio: 0.5 },
      },
      {
        scenario: 'leases: sweeper lag after expiry, 1,000 active leases (p50/p99 in s)',
        unit: 's',
        rate: p99,
        p50: percentile(lags, 0.5) * 1000,
        p99: p99 * 1000,
        aim: { text: 'p99 < 5 s', met: p99 < 5 },
      },
    ];
  } finally {
    await t?.stop();
    await target.drop();
  }
}
