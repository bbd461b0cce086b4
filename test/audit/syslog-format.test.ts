import { expect } from 'chai';
import { formatRfc5424, frameOctetCounted, parseForwarded } from '../../nexus/audit/syslog-format.js';
import { parseSyslogTarget } from '../../nexus/audit/syslog-target.js';

const MAC = 'ab'.repeat(32);
const line = `{"name":"nexus-audit","hostname":"h","pid":7,"level":30,"port":"mtls","principal":{"spiffe_id":"spiffe://x/é"},"action":"secret.read","path":"app/db","decision":"deny","status":403,"msg":"secret.read","time":"2026-12-06T01:02:03.456Z","v":0,"gen":2,"seq":42,"key":"kcv","prev":"${'0'.repeat(64)}","mac":"${MAC}"}`;

describe('audit records as RFC 5424 syslog messages', () => {
  it('formats a trail line byte for byte: PRI (log audit, warning for a denial), header, chain fields in structured data, BOM, the line as written', () => {
    expect(formatRfc5424(line, 'server@r1', 'host-1')).to.equal(
      `<108>1 2026-12-06T01:02:03.456Z host-1 nexus - secret.read [nexus@32473 chain="server@r1" gen="2" seq="42" mac="${MAC}"] \uFEFF${line}`,
    );
    expect(formatRfc5424(line.replace('"decision":"deny"', '"decision":"allow"'), 'server', 'h')).to.match(/^<110>1 /);
    expect(formatRfc5424('{"not":"a record"}', 'server')).to.equal(null);
  });

  it('frames with octet counting: the byte length (not characters), a space, the message', () => {
    const msg = formatRfc5424(line, 'server', 'h')!;
    const framed = frameOctetCounted(msg);
    const len = Buffer.byteLength(msg);
    expect(len).to.be.greaterThan(msg.length);
    expect(framed.toString('utf8')).to.equal(`${len} ${msg}`);
  });

  it('reads a record back from a receiver line (structured-data values unescaped), and ignores lines without one', () => {
    const msg = formatRfc5424(line, 'we"ird]\\chain', 'h')!;
    expect(msg).to.include('chain="we\\"ird\\]\\\\chain"');
    expect(parseForwarded(msg)).to.deep.equal({ chain: 'we"ird]\\chain', gen: 2, seq: 42, mac: MAC, line });
    expect(parseForwarded('<13>1 - h app - - - hello')).to.equal(null);
  });

  it('NEXUS_AUDIT_SYSLOG: tls, tcp and udp URLs with default ports; anything else says what is wrong', () => {
    expect(parseSyslogTarget('tls://logs.example:6514')).to.deep.equal({ protocol: 'tls', host: 'logs.example', port: 6514, url: 'tls://logs.example:6514' });
    expect(parseSyslogTarget('udp://[::1]')).to.deep.equal({ protocol: 'udp', host: '::1', port: 514, url: 'udp://[::1]:514' });
    expect(parseSyslogTarget('http://x:1')).to.have.property('invalid').that.matches(/scheme must be tls, tcp or udp/);
    expect(parseSyslogTarget('tcp://x:1/path')).to.have.property('invalid');
    expect(parseSyslogTarget('tcp://user:pw@x:1')).to.have.property('invalid').that.matches(/no credentials/);
    expect(parseSyslogTarget('logs:514')).to.have.property('invalid');
  });
});
