// A child process for crash tests: writes secrets as fast as it can and
// prints one line per acknowledged (committed) write, until it is killed.
//   ack <path> <version> <value>
import { loadConfig } from '../../nexus/config/index.js';
import { openCore } from '../../nexus/core.js';
import { silentLogger } from '../../nexus/log.js';

const round = process.argv[2] ?? '0';
const core = await openCore(loadConfig(), silentLogger());
let counterVersion = 0;
try {
  counterVersion = (await core.secrets.metadata('crash/counter')).current_version;
} catch {
  /* first round: the counter does not exist yet */
}
process.stdout.write('ready\n');
for (let i = 0; ; i++) {
  const value = `r${round}-i${i}-${Math.random().toString(36).slice(2)}`;
  // Alternate fresh paths with check-and-set updates of one hot path.
  const path = i % 2 === 0 ? `crash/r${round}/s${i}` : 'crash/counter';
  const r = await core.secrets.put(path, { value }, path === 'crash/counter' ? { cas: counterVersion } : {});
  if (path === 'crash/counter') counterVersion = r.version;
  process.stdout.write(`ack ${path} ${r.version} ${value}\n`);
  if (i % 64 === 0) await new Promise((res) => setImmediate(res));
}
