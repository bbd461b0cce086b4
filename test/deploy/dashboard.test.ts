import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { ROOT, tempDir } from '../helpers/env.js';
import { systemTool } from '../helpers/tools.js';
import { exportedNames, FROM_PROMETHEUS, metricNames, NOT_YET_EXPORTED, scrapeRunningNexus } from './metric-names.js';

interface Target { refId: string; expr: string }
interface Panel { id: number; type: string; title: string; targets?: Target[]; panels?: Panel[]; gridPos?: unknown }

const dashboard = JSON.parse(fs.readFileSync(path.join(ROOT, 'deploy/grafana/nexus.json'), 'utf8')) as { uid: string; panels: Panel[]; templating: { list: Array<{ name: string; definition?: string }> } };
/** Collapsed rows keep their panels inside them. */
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const queries = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p, ...t })));

/** Grafana's variables, as Prometheus would see them after Grafana substituted them. */
function asPromql(expr: string): string {
  return expr.replace(/\$__(rate_interval|interval|range)\b/g, '5m').replace(/\$\{?instance\}?/g, '.*');
}

describe('deploy/grafana: the dashboard', function () {
  this.timeout(60_000);

  it('every panel but rows has at least one query, ids are unique, each has a place', () => {
    expect(queries.length).to.be.greaterThan(20);
    for (const p of panels) {
      expect(p.gridPos, p.title).to.be.an('object');
      if (p.type !== 'row') expect(p.targets, p.title).to.be.an('array').that.is.not.empty;
      for (const t of p.targets ?? []) expect(t.expr.trim(), `${p.title} ${t.refId}`).to.not.equal('');
    }
    expect(new Set(panels.map((p) => p.id)).size).to.equal(panels.length);
  });

  it('every query is valid PromQL (promtool check rules on a generated recording rule per query)', function () {
    const tool = systemTool(this, 'promtool', 'apt-get install -y prometheus (Debian); .ci/run does');
    const file = path.join(tempDir('nexus-dashboard'), 'dashboard-queries.yml');
    const rules = queries.map((q) => ({ record: `dashboard:panel_${q.panel.id}_${q.refId}`, expr: asPromql(q.expr) }));
    fs.writeFileSync(file, YAML.stringify({ groups: [{ name: 'dashboard', rules }] }));
    const r = spawnSync(tool, ['check', 'rules', file], { encoding: 'utf8' });
    expect(r.status, `${r.stdout}${r.stderr}`).to.equal(0);
    expect(r.stdout).to.include(`SUCCESS: ${rules.length} rules found`);
    // And promtool does refuse a broken one (the check can fail).
    fs.writeFileSync(file, YAML.stringify({ groups: [{ name: 'dashboard', rules: [{ record: 'dashboard:broken', expr: asPromql('sum by (port) (rate(nexus_http_requests_total[$__rate_interval])') }] }] }));
    expect(spawnSync(tool, ['check', 'rules', file], { encoding: 'utf8' }).status).to.not.equal(0);
  });

  describe('against a running Nexus (OIDC plugin on)', () => {
    let exported: Set<string>;
    before(async () => {
      exported = exportedNames(await scrapeRunningNexus());
    });

    it('names only metrics it exports (or the short list not exported yet, or `up`)', () => {
      const named = [...new Set([...queries.map((q) => q.expr), ...dashboard.templating.list.map((v) => v.definition ?? '')].flatMap((e) => metricNames(asPromql(e.replace(/label_values\(([^,)]+).*\)/, '$1')))))];
      expect(named).to.include('nexus_http_requests_total');
      const missing = named.filter((n) => !exported.has(n) && !NOT_YET_EXPORTED.includes(n) && !FROM_PROMETHEUS.includes(n));
      expect(missing, 'metrics the dashboard names that a running Nexus does not export').to.deep.equal([]);
    });

    it('the not-yet-exported list holds only what is really not exported, and what the dashboard uses', () => {
      const nowExported = NOT_YET_EXPORTED.filter((n) => exported.has(n));
      expect(nowExported, 'exported now: remove from NOT_YET_EXPORTED in test/deploy/metric-names.ts').to.deep.equal([]);
      const dash = JSON.stringify(dashboard);
      expect(NOT_YET_EXPORTED.filter((n) => !dash.includes(n)), 'listed but unused').to.deep.equal([]);
    });

    it('shows what the issue asks: requests and latency per port and route, denials, signals, rate limits, JWKS, audit, certificate days left, storage latency, replicas', () => {
      const all = queries.map((q) => q.expr).join('\n');
      expect(all).to.match(/sum by \(port, method, route\) \(rate\(nexus_http_requests_total/);
      expect(all).to.match(/histogram_quantile\(0\.99, sum by \(port, route, le\) \(rate\(nexus_http_request_duration_seconds_bucket/);
      expect(all).to.include('status=~"401|403"');
      for (const m of ['nexus_security_signals_total', 'nexus_rate_limited_total', 'nexus_jwks_fetches_total', 'nexus_audit_chain_head_seq', 'nexus_audit_forward_lag_records', 'nexus_audit_chain_breaks_total', 'nexus_storage_operation_duration_seconds_bucket', 'up{job="nexus"}']) {
        expect(all).to.include(m);
      }
      expect(all).to.include('(nexus_tls_cert_expiry_timestamp_seconds{instance=~"$instance"} - time()) / 86400');
    });
  });
});
