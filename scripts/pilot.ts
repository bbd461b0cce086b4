// Pilot: the Nexus CLI. Talks to the mTLS port with a SPIFFE SVID.
// Exit codes: 0 ok, 1 refused or failed by the server or the network, 2 usage error.
// No top-level await: the production build bundles this as CommonJS, which starts faster.
import { CommanderError } from 'commander';
import { buildProgram } from './lib/pilot-commands.js';
import { PilotError, UsageError } from './lib/pilot-conn.js';
import { packageVersion } from './lib/version.js';

function fail(err: unknown): void {
  if (err instanceof CommanderError) {
    // Help and --version exit 0; every other commander error is a usage error (already printed).
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else if (err instanceof UsageError) {
    process.stderr.write(`pilot: ${err.message}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`pilot: ${err instanceof PilotError ? err.message : (err as Error).message}\n`);
    process.exitCode = 1;
  }
}

try {
  // Only the command group named on the command line is built in full (completion needs them all).
  buildProgram(packageVersion(), process.argv.slice(2)).parseAsync().catch(fail);
} catch (err) {
  fail(err);
}
