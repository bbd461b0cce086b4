import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { ROOT } from '../helpers/env.js';
import { systemTool } from '../helpers/tools.js';
import { FROM_PROMETHEUS, metricNames } from './metric-names.js';

const DIR = path.join(ROOT, 'deploy/prometheus');
const RULES = path.join(DIR, 'nexus-alerts.yml');
const TESTS = fs.readdirSync(path.join(DIR, 'tests')).filter((f) => f.endsWith('.yml')).map((f) => path.join(DIR, 'tests', f));

interface Rule { alert: string; expr: string; labels?: Record<string, string>; annotations?: Record<string, string> }
interface AlertTest { alertname: string; exp_alerts: unknown[] }

const rules = (YAML.parse(fs.readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);

function promtool(tool: string, args: string[]): { code: number | null; out: string } {
  const r = spawnSync(tool, args, { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('deploy/prometheus: alert rules', function () {
  this.timeout(60_000);

  it('promtool check rules accepts the file', function () {
    const tool = systemTool(this, 'promtool', 'apt-get install -y prometheus (Debian); .ci/run does');
    const r = promtool(tool, ['check', 'rules', RULES]);
    expect(r.code, r.out).to.equal(0);
    expect(r.out).to.include(`SUCCESS: ${rules.length} rules found`);
  });

  it('promtool test rules passes every unit test in deploy/prometheus/tests/', function () {
    const tool = systemTool(this, 'promtool', 'apt-get install -y prometheus (Debian); .ci/run does');
    expect(TESTS).to.not.be.empty;
    const r = promtool(tool, ['test', 'rules', ...TESTS]);
    expect(r.code, r.out).to.equal(0);
    expect(r.out).to.not.include('FAILED');
  });

  it('every alert has a unit test where it fires and one where it stays silent', () => {
    const checks = TESTS.flatMap((f) => (YAML.parse(fs.readFileSync(f, 'utf8')) as { tests: Array<{ alert_rule_test?: AlertTest[] }> }).tests.flatMap((t) => t.alert_rule_test ?? []));
    const firing = new Set(checks.filter((c) => c.exp_alerts.length > 0).map((c) => c.alertname));
    const silent = new Set(checks.filter((c) => c.exp_alerts.length === 0).map((c) => c.alertname));
    const names = rules.map((r) => r.alert);
    expect(names.filter((n) => !firing.has(n)), 'alerts never shown firing').to.deep.equal([]);
    expect(names.filter((n) => !silent.has(n)), 'alerts never shown silent').to.deep.equal([]);
  });

  it('covers the issue: every signal, the audit chain, 5xx, JWKS, rate limits, readiness, certificates, leases, the seal', () => {
    const exprs = rules.map((r) => r.expr).join('\n');
    for (const signal of ['new_path', 'denied_burst', 'read_spike', 'token_replay', 'config_change', 'audit_integrity']) expect(exprs).to.include(`signal="${signal}"`);
    for (const m of ['nexus_audit_chain_breaks_total', 'nexus_audit_chain_head_seq', 'nexus_audit_chain_head_generation', 'nexus_jwks_fetches_total', 'nexus_rate_limited_total', 'probe_success', 'nexus_tls_cert_expiry_timestamp_seconds', 'nexus_lease_revocations_total', 'nexus_sealed', 'nexus_unseal_failures_total']) {
      expect(exprs).to.include(m);
    }
    expect(exprs).to.match(/status="503"/).and.match(/status=~"5\.\."/).and.include('7 * 86400');
  });

  it('names only Nexus metrics (nexus_*) and the two Prometheus makes', () => {
    const names = [...new Set(rules.flatMap((r) => metricNames(r.expr)))];
    expect(names.filter((n) => !n.startsWith('nexus_') && !FROM_PROMETHEUS.includes(n))).to.deep.equal([]);
    expect(metricNames('sum by (instance, port) (rate(nexus_x_total{a="b"}[5m])) > 0 unless on (instance) up offset 5m')).to.have.members(['nexus_x_total', 'up']);
  });

  it('every alert has a severity, a summary and a description', () => {
    for (const r of rules) {
      expect(r.labels?.severity, r.alert).to.be.oneOf(['critical', 'warning', 'info']);
      expect(r.annotations?.summary, r.alert).to.be.a('string');
      expect(r.annotations?.description, r.alert).to.be.a('string');
    }
  });
});
