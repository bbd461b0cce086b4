// A child process that keeps writing secrets until told to stop (stdin closes),
// so a backup can be taken while the db is in use. Prints "ready" once the
// first write has committed, and the number of writes at the end.
import { loadConfig } from '../../nexus/config/index.js';
import { openCore } from '../../nexus/core.js';
import { silentLogger } from '../../nexus/log.js';

const core = await openCore(loadConfig(), silentLogger());
let stop = false;
process.stdin.on('end', () => (stop = true));
process.stdin.resume();
let n = 0;
for (; !stop; n++) {
  await core.secrets.put(`busy/s${n % 500}`, { n: String(n) });
  if (n === 0) process.stdout.write('ready\n');
  await new Promise((res) => setImmediate(res));
}
core.close();
process.stdout.write(`wrote ${n}\n`);
