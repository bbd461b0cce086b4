import { expect } from 'chai';
import type { Signal } from '../../nexus/signals/types.js';
import { formatSignals } from '../../scripts/lib/pilot-signals.js';

// A claim value from any token the issuer signed can reach a signal's principal:
// pilot signals must not let it drive the operator's terminal.
describe('pilot signals: text output shows claim values, never runs them', function () {
  it('escape sequences, newlines and bidi overrides are shown escaped, one signal per line', () => {
    const evil = 'evil/\u001b[2J\u001b]0;owned\u0007\u001b[32mALL CLEAR\u001b[0m\nfake line\u202e';
    const s = { at: '2026-12-06T00:00:00.000Z', signal: 'denied_burst', port: 'oidc', principal: `ci/deploy/repository=${evil}`, address: '127.0.0.1', why: 'x\ry' } as Signal;
    const out = formatSignals([s, { ...s, principal: 'spiffe://nexus.local/ok' }]);
    const lines = out.split('\n');
    expect(lines).to.have.length(2);
    for (const line of lines) expect(line).to.not.match(/[\u0000-\u001f\u007f-\u009f\u202e]/);
    expect(out).to.contain('repository=evil/\\u{1b}[2J\\u{1b}]0;owned\\u{7}');
    expect(out).to.contain('fake line\\u{202e}');
    expect(out).to.contain('x\\u{d}y');
  });
});
