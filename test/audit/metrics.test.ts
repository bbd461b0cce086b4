import { expect } from 'chai';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { call } from '../helpers/server.js';
import { Metrics } from '../../nexus/metrics.js';

function value(text: string, metric: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`) && !line.startsWith(`${metric} `)) continue;
    if (want.every((w) => line.includes(w))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

describe('metrics', function () {
  this.timeout(30_000);
  let e: OidcEnv;
  const scrape = async () => {
    const r = await e.admin('GET', '/metrics');
    expect(r.status).to.equal(200);
    expect(r.headers['content-type']).to.match(/text\/plain/);
    return r.text;
  };

  before(async () => {
    e = await startOidcEnv({ NEXUS_OIDC_FAILED_AUTH_RPS: '1' });
    await e.admin('PUT', '/v1/secrets/ci/org/repo/db', { data: { v: 'x' } });
    await e.admin('PUT', '/v1/oidc/roles/main', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: ['ci/org/repo/*'], permissions: ['read'] });
  });
  after(() => e.stop());

  it('counters move with traffic', async () => {
    const before = await scrape();
    for (let i = 0; i < 3; i++) await e.admin('GET', '/v1/secrets/ci/org/repo/db');
    await e.oidc(await e.idp.token(github('org/repo')), 'GET', '/v1/secrets/ci/org/repo/db');
    for (let i = 0; i < 7; i++) await e.oidc('x.y.z', 'GET', '/v1/whoami');
    const after = await scrape();
    const d = (m: string, l: Record<string, string> = {}) => value(after, m, l) - value(before, m, l);
    // Route templates as the contract writes them, and the method.
    expect(after).to.not.include('{*rest}');
    expect(d('nexus_http_requests_total', { port: 'mtls', method: 'GET', route: '/v1/secrets/{path}', status: '200' })).to.equal(3);
    expect(d('nexus_http_requests_total', { port: 'oidc', method: 'GET', route: '/v1/secrets/{path}', status: '200' })).to.equal(1);
    expect(d('nexus_http_request_duration_seconds_count', { port: 'mtls', method: 'GET', route: '/v1/secrets/{path}' })).to.equal(3);
    expect(d('nexus_jwt_rejections_total', { reason: 'malformed' })).to.equal(7);
    expect(d('nexus_rate_limited_total', { port: 'oidc', limit: 'failed_auth' })).to.equal(2);
    expect(d('nexus_storage_operation_duration_seconds_count', { op: 'get' })).to.equal(4);
    expect(value(after, 'nexus_jwks_fetches_total', { issuer: 'ci', result: 'ok' })).to.be.greaterThan(0);
    expect(value(after, 'nexus_secrets')).to.equal(1);
  });

  it('an identity without the metrics or admin grant gets 403; with it, 200', async () => {
    const watcher = await e.t.svid('spiffe://nexus.local/prometheus');
    expect((await call(e.t.port, watcher, 'GET', '/metrics')).status).to.equal(403);
    await e.admin('PUT', '/v1/policies/prometheus', { spiffe_id: 'spiffe://nexus.local/prometheus', paths: ['-'], permissions: ['metrics'] });
    const r = await call(e.t.port, watcher, 'GET', '/metrics');
    expect(r.status).to.equal(200);
    expect(r.text).to.include('nexus_http_requests_total');
    // metrics grants nothing else
    expect((await call(e.t.port, watcher, 'GET', '/v1/secrets/ci/org/repo/db')).status).to.equal(403);
    // and the OIDC port has no /metrics at all
    expect((await e.oidc(undefined, 'GET', '/metrics')).status).to.equal(404);
  });

  it('request series are kept as plain numbers and rendered at scrape time with the same names and labels', async () => {
    const m = new Metrics(async () => 0);
    const l = { port: 'mtls', method: 'GET', route: '/v1/secrets/{path}' };
    for (const secs of [0.0003, 0.003, 2]) m.http.record(l.port, l.method, l.route, 200, secs);
    m.http.record(l.port, l.method, l.route, 404, 0.0001);
    const text = await m.registry.metrics();
    expect(text).to.include('# TYPE nexus_http_requests_total counter').and.include('# TYPE nexus_http_request_duration_seconds histogram');
    expect(value(text, 'nexus_http_requests_total', { ...l, status: '200' })).to.equal(3);
    expect(value(text, 'nexus_http_requests_total', { ...l, status: '404' })).to.equal(1);
    const bucket = (le: string) => value(text, 'nexus_http_request_duration_seconds_bucket', { ...l, le });
    expect([bucket('0.0005'), bucket('0.005'), bucket('1'), bucket('+Inf')]).to.deep.equal([2, 3, 3, 4]);
    expect(value(text, 'nexus_http_request_duration_seconds_count', l)).to.equal(4);
    expect(value(text, 'nexus_http_request_duration_seconds_sum', l)).to.be.closeTo(2.0034, 1e-9);
  });

  it('the latency histogram of real traffic is cumulative and ends at its count', async () => {
    const text = await scrape();
    const l = { port: 'mtls', method: 'GET', route: '/v1/secrets/{path}' };
    const lines = text.split('\n').filter((x) => x.startsWith('nexus_http_request_duration_seconds_bucket{') && x.includes('route="/v1/secrets/{path}"') && x.includes('port="mtls"') && x.includes('method="GET"'));
    const counts = lines.map((x) => Number(x.slice(x.lastIndexOf(' ') + 1)));
    expect(counts.length).to.equal(11);
    for (let i = 1; i < counts.length; i++) expect(counts[i]).to.be.at.least(counts[i - 1]!);
    expect(counts.at(-1)).to.equal(value(text, 'nexus_http_request_duration_seconds_count', l)).and.to.be.greaterThan(0);
  });
});
