// Loaded with --import into a bench's Nexus (BENCH_SERVER_PROFILE=DIR): a V8 CPU profile of
// the whole run, written to DIR when the process is told to stop (--cpu-prof cannot be
// given through NODE_OPTIONS). Read it with `npm run bench:profile -- --summarize FILE`.
import fs from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';

const dir = process.env.BENCH_PROFILE_DIR;
const session = new Session();
session.connect();
const post = (method, params) => new Promise((resolve, reject) => session.post(method, params, (err, r) => (err ? reject(err) : resolve(r))));
await post('Profiler.enable');
await post('Profiler.start');
process.prependListener('SIGTERM', () => {
  session.post('Profiler.stop', (err, r) => {
    if (!err) {
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, `nexus-${process.pid}.0.001.cpuprofile`), JSON.stringify(r.profile));
    }
  });
});
