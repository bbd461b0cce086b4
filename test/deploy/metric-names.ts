import { github } from '../helpers/idp.js';
import { startOidcEnv } from '../helpers/oidc.js';

/**
 * Metrics the dashboard names by their contract (issue 23), built in parallel
 * branches (signals, audit forwarding) and not exported by this tree yet.
 * Lead: remove each name once its branch is merged; test/deploy/dashboard.test.ts
 * fails for a name listed here that a running Nexus exports, so the list
 * cannot go stale. (The alert rules also name the leases' and the seal's
 * metrics; promtool tests them on synthetic series.)
 */
export const NOT_YET_EXPORTED: string[] = [];

/** Series Prometheus makes itself (`up`) or takes from the blackbox exporter probing /readyz. */
export const FROM_PROMETHEUS = ['up', 'probe_success'];

const KEYWORDS = new Set(['by', 'on', 'and', 'or', 'unless', 'offset', 'bool', 'ignoring', 'group_left', 'group_right', 'without', 'inf', 'nan']);

/** Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or strings. */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names = new Set<string>();
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = bare.slice(m.index! + m[0].length).trimStart();
    if (after.startsWith('(') || KEYWORDS.has(m[0].toLowerCase())) continue;
    // The unit of a duration (`offset 5m`) or an exponent (`1e3`) follows a digit.
    if (/^\d/.test(bare[m.index! - 1] ?? '')) continue;
    names.add(m[0]);
  }
  return [...names];
}

/** Metric names in Prometheus text: every sample's name, every declared family, and a histogram's series. */
export function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const type = line.match(/^# TYPE (\S+) (\S+)/);
    if (type) {
      names.add(type[1]!);
      if (type[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${type[1]}${s}`);
    } else if (line && !line.startsWith('#')) names.add(line.match(/^[a-zA-Z_:][a-zA-Z0-9_:]*/)![0]);
  }
  return names;
}

/** What a running Nexus, OIDC plugin on, serves on /metrics after a little traffic on both ports. */
export async function scrapeRunningNexus(): Promise<string> {
  const e = await startOidcEnv();
  try {
    await e.admin('PUT', '/v1/secrets/ci/org/repo/db', { data: { v: 'x' } });
    await e.admin('PUT', '/v1/oidc/roles/main', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: ['ci/org/repo/*'], permissions: ['read'] });
    await e.admin('GET', '/v1/secrets/ci/org/repo/db');
    await e.oidc(await e.idp.token(github('org/repo')), 'GET', '/v1/secrets/ci/org/repo/db');
    const r = await e.admin('GET', '/metrics');
    if (r.status !== 200) throw new Error(`GET /metrics: ${r.status} ${r.text}`);
    return r.text;
  } finally {
    await e.stop();
  }
}
