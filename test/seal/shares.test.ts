import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { initSodium } from '../../nexus/crypto/sodium.js';
import { parseShare, SHARE_BYTES } from '../../nexus/seal/shamir.js';
import { openSplit, splitRootKey, WrongQuorumError } from '../../nexus/seal/split.js';
import { UnsealProgress } from '../../nexus/seal/unseal-progress.js';

const encode = (splitId: string, bytes: Buffer) => `nxs1-${splitId}-${bytes.toString('base64url')}`;

describe('unseal shares: encoding, refusals, quorum', () => {
  before(() => initSodium());

  it('any T of N shares rebuild the root key; T-1 do not open the seal', async () => {
    const root = randomBytes(32);
    const { record, shares } = await splitRootKey(root, 5, 3);
    const subsets = [[0, 1, 2], [0, 2, 4], [1, 3, 4], [4, 3, 2], [0, 1, 2, 3, 4]];
    for (const idx of subsets) expect((await openSplit(record, idx.map((i) => parseShare(shares[i])))).equals(root), idx.join(',')).to.equal(true);
    // Two shares are too few: the library accepts them but rebuilds another key, which the seal refuses.
    let err: unknown = null;
    await openSplit(record, [parseShare(shares[0]), parseShare(shares[1])]).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(WrongQuorumError);
  });

  const split = '0123456789abcdef';
  const good = Buffer.alloc(SHARE_BYTES, 7);
  const table: Array<[string, unknown, string]> = [
    ['not a string', 42, 'share'],
    ['empty', '', 'share.format'],
    ['no prefix', good.toString('base64url'), 'share.format'],
    ['bad split id', `nxs1-XYZ-${good.toString('base64url')}`, 'share.format'],
    ['too short', encode(split, good.subarray(0, 20)), 'share.length'],
    ['too long', encode(split, Buffer.concat([good, good])), 'share.length'],
    ['index 0', encode(split, Buffer.concat([good.subarray(0, 32), Buffer.from([0])])), 'share.index'],
    ['all zero', encode(split, Buffer.concat([Buffer.alloc(32), Buffer.from([3])])), 'share.zero'],
  ];
  for (const [what, raw, rule] of table) {
    it(`refuses ${what} (${rule})`, () => {
      expect(() => parseShare(raw)).to.throw().with.property('rule', rule);
    });
  }

  it('one attempt: a repeated index counts once, another split resets, a wrong nonce is refused, reset wipes what it held', () => {
    const p = new UnsealProgress(3, split);
    const s1 = parseShare(encode(split, Buffer.concat([good.subarray(0, 32), Buffer.from([1])])));
    const held = s1.bytes;
    expect(p.add(s1, undefined)).to.equal(null);
    expect(p.add(parseShare(encode(split, Buffer.concat([good.subarray(0, 32), Buffer.from([1])]))), p.nonce)).to.equal(null);
    expect(p.progress).to.equal(1);
    expect(() => p.add(parseShare(encode(split, Buffer.concat([good.subarray(0, 32), Buffer.from([2])]))), 'f'.repeat(32))).to.throw(/another unseal attempt/);
    expect(p.progress).to.equal(1);
    const nonce = p.nonce;
    expect(() => p.add(parseShare(encode('fedcba9876543210', good)), nonce)).to.throw(/another split/);
    expect(p.progress).to.equal(0);
    expect(p.nonce).to.not.equal(nonce);
    expect(held.every((b) => b === 0)).to.equal(true);
  });
});
