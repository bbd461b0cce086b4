import { expect } from 'chai';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { createCA } from '../../nexus/pki/x509.js';
import { fetchX509Svid, WorkloadApiError, watchX509Svid, workloadService, type X509Svid } from '../../nexus/spiffe/workload-api.js';
import { until } from '../helpers/wait.js';
import { startWorkloadApi, svidFrom, type TestWorkloadApi } from '../helpers/workload-api.js';

describe('SPIFFE Workload API client', function () {
  this.timeout(60_000);
  let ca: Awaited<ReturnType<typeof createCA>>;
  let api: TestWorkloadApi;
  before(async () => {
    ca = await createCA('test spire CA');
    api = await startWorkloadApi(await svidFrom(ca, 'spiffe://example.org/ci/job'));
  });
  after(() => api.stop());

  it('fetches the X509-SVID, its key and the bundle, sending the workload.spiffe.io metadata', async () => {
    for (const endpoint of [api.endpoint, api.socket]) {
      const svid = await fetchX509Svid(endpoint);
      expect(svid.spiffeId).to.equal('spiffe://example.org/ci/job');
      const leaf = new X509Certificate(svid.certPem);
      expect(leaf.subjectAltName).to.equal('URI:spiffe://example.org/ci/job');
      expect(leaf.checkPrivateKey(createPrivateKey(svid.keyPem))).to.equal(true);
      expect(leaf.verify(new X509Certificate(svid.bundlePem).publicKey)).to.equal(true);
      expect(svid.notAfter.getTime()).to.be.greaterThan(Date.now());
    }
    expect(api.refused()).to.equal(0);
    // The server of the test really refuses a call without the metadata (so the client's success above means it sent it).
    const Service = workloadService();
    const client = new Service(api.endpoint, grpc.credentials.createInsecure());
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      const call = (client as unknown as { FetchX509SVID(r: object): grpc.ClientReadableStream<unknown> }).FetchX509SVID({});
      call.on('error', resolve);
    });
    client.close();
    expect(err.code).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(api.refused()).to.equal(1);
  });

  it('follows rotations on the open stream', async () => {
    const seen: X509Svid[] = [];
    const errors: Error[] = [];
    const watch = watchX509Svid(api.endpoint, (s) => seen.push(s), (e) => errors.push(e));
    try {
      const first = await watch.first;
      expect(first.spiffeId).to.equal('spiffe://example.org/ci/job');
      const next = await svidFrom(ca, 'spiffe://example.org/ci/job');
      api.rotate(next);
      await until(() => seen.length >= 2, 'the rotated SVID');
      expect(new X509Certificate(seen.at(-1)!.certPem).serialNumber).to.equal(new X509Certificate(next.certPem).serialNumber);
      expect(new X509Certificate(seen[0]!.certPem).serialNumber).to.not.equal(new X509Certificate(next.certPem).serialNumber);
      expect(errors).to.deep.equal([]);
    } finally {
      watch.stop();
    }
  });

  it('a socket that is gone: a clear error naming it', async () => {
    const gone = await startWorkloadApi(await svidFrom(ca, 'spiffe://example.org/x'));
    await gone.stop();
    const err = await fetchX509Svid(gone.endpoint, { timeoutMs: 10_000 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(WorkloadApiError);
    expect((err as Error).message).to.include(gone.endpoint).and.to.match(/unavailable/);
    expect(() => fetchX509Svid('tcp://127.0.0.1:1')).to.throw(WorkloadApiError, /unix:\/\/\/absolute\/path/);
  });

  it('the watch reports an agent that went away (naming the socket) and keeps retrying', async () => {
    const local = await startWorkloadApi(await svidFrom(ca, 'spiffe://example.org/w'));
    const seen: X509Svid[] = [];
    const errors: Error[] = [];
    const watch = watchX509Svid(local.endpoint, (s) => seen.push(s), (e) => errors.push(e), { maxBackoffMs: 500 });
    try {
      await watch.first;
      await local.stop();
      await until(() => errors.length > 0, 'an error after the agent went away');
      expect(errors[0]!.message).to.include(local.endpoint);
    } finally {
      watch.stop();
    }
  });
});
