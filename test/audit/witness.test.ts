import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { chainFieldsOf } from '../../nexus/audit/syslog-format.js';
import { readForwardedCopy } from '../../nexus/audit/forwarded-copy.js';
import { AuditAnchorRepo } from '../../nexus/storage/audit-repo.js';
import { openDatabase } from '../../nexus/storage/db.js';
import { runBin, testEnv } from '../helpers/env.js';
import { startReceiver } from '../helpers/rsyslog.js';
import { call, startTestServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';

describe('audit witness: the receiver’s copy against the local trail', function () {
  this.timeout(120_000);

  it('cutting the last records and moving the anchor back passes verify, and verify --witness names the first missing record', async () => {
    const rx = await startReceiver('tcp');
    try {
      const t = await startTestServer({ NEXUS_AUDIT_SYSLOG: `tcp://127.0.0.1:${rx.port}` });
      try {
        for (let i = 0; i < 30; i++) expect((await call(t.port, t.admin, 'PUT', `/v1/secrets/app/s${i}`, { data: { v: String(i) } })).status).to.be.oneOf([200, 201]);
        const h = t.server.core.audit.head();
        await until(() => fs.existsSync(rx.out) && readForwardedCopy(rx.out, 'server').records.some((r) => r.seq === h.count), 'the receiver holds the head');
      } finally {
        await t.stop();
      }
      const file = path.join(t.dir, 'audit.jsonl');
      const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
      const n = lines.length;
      const clean = await runBin('nexus-audit', ['verify', '--witness', rx.out], testEnv(t.dir));
      expect(clean.code, clean.stderr).to.equal(0);
      expect(clean.stdout).to.match(new RegExp(`witness agrees: the ${n} record\\(s\\)`));

      // The attack: someone who can write the data dir drops the last 5 records and sets the anchor to the new last line.
      const kept = lines.slice(0, n - 5);
      fs.writeFileSync(file, `${kept.join('\n')}\n`);
      const last = chainFieldsOf(kept.at(-1)!)!;
      const kcv = (JSON.parse(kept.at(-1)!) as { key: string }).key;
      const db = openDatabase(path.join(t.dir, 'nexus.db'));
      new AuditAnchorRepo(db).set('server', { generation: last.gen, count: last.seq, mac: last.mac, kcv });
      db.close();

      const local = await runBin('nexus-audit', ['verify'], testEnv(t.dir));
      expect(local.code, 'the local anchor alone cannot see it').to.equal(0);
      const witnessed = await runBin('nexus-audit', ['verify', '--witness', rx.out], testEnv(t.dir));
      expect(witnessed.code).to.equal(1);
      expect(witnessed.stderr).to.match(new RegExp(`witness: record ${n - 4} of generation 1 is missing from the local trail; the witness holds it \\(received\\.log:\\d+\\)`));
      expect(witnessed.stderr).to.match(new RegExp(`5 record\\(s\\) the witness holds are missing from the local trail: ${n - 4}-${n} of generation 1`));

      // A record that is not the one forwarded (here its MAC replaced) differs from the witness's.
      const altered = [...kept];
      altered[3] = lines[3]!.replace(/"mac":"[0-9a-f]+"/, `"mac":"${'0'.repeat(64)}"`);
      fs.writeFileSync(file, `${altered.join('\n')}\n`);
      const differs = await runBin('nexus-audit', ['verify', '--witness', rx.out], testEnv(t.dir));
      expect(differs.code).to.equal(1);
      expect(differs.stderr).to.match(/witness: record 4 of generation 1 differs: audit\.jsonl:4 is not the record the witness holds/);
    } finally {
      await rx.stop();
    }
  });
});
