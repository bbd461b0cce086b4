import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { runBin, tempDir, testEnv } from '../helpers/env.js';

/** `nexus` started for real with `env`: it must refuse, naming the variable. */
async function refused(env: Record<string, string>): Promise<string> {
  const dir = tempDir();
  const r = await runBin('nexus', [], testEnv(dir, { NEXUS_MTLS_ADDR: '127.0.0.1:0', NEXUS_OIDC_ADDR: 'off', ...env }));
  expect(r.code, r.stdout + r.stderr).to.not.equal(0);
  expect(fs.existsSync(path.join(dir, 'audit.jsonl')), 'nothing is written before the config is checked').to.equal(false);
  return r.stderr + r.stdout;
}

describe('audit forwarding: bad configuration fails start naming the variable', function () {
  this.timeout(60_000);

  it('a malformed NEXUS_AUDIT_SYSLOG', async () => {
    expect(await refused({ NEXUS_AUDIT_SYSLOG: 'syslog.example:514' })).to.match(/NEXUS_AUDIT_SYSLOG\b.*(scheme must be tls, tcp or udp|expected tls:\/\/host:port)/);
    expect(await refused({ NEXUS_AUDIT_SYSLOG: 'https://syslog.example:6514' })).to.match(/NEXUS_AUDIT_SYSLOG\b.*scheme must be tls, tcp or udp/);
  });

  it('an unreadable NEXUS_AUDIT_SYSLOG_CA, or one that holds no certificate', async () => {
    const missing = path.join(tempDir(), 'nope.pem');
    expect(await refused({ NEXUS_AUDIT_SYSLOG: 'tls://127.0.0.1:6514', NEXUS_AUDIT_SYSLOG_CA: missing })).to.match(/NEXUS_AUDIT_SYSLOG_CA.*cannot read .*nope\.pem: ENOENT/);
    const junk = path.join(tempDir(), 'junk.pem');
    fs.writeFileSync(junk, 'not a certificate');
    expect(await refused({ NEXUS_AUDIT_SYSLOG: 'tls://127.0.0.1:6514', NEXUS_AUDIT_SYSLOG_CA: junk })).to.match(/NEXUS_AUDIT_SYSLOG_CA.*holds no certificate/);
  });

  it('a CA without tls:// forwarding', async () => {
    const dir = tempDir();
    const ca = path.join(dir, 'ca.pem');
    fs.writeFileSync(ca, 'x');
    expect(await refused({ NEXUS_AUDIT_SYSLOG: 'tcp://127.0.0.1:514', NEXUS_AUDIT_SYSLOG_CA: ca })).to.match(/NEXUS_AUDIT_SYSLOG_CA.*is for tls:\/\/ forwarding/);
  });
});
