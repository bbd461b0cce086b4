// `npm start` / the `nexus` bin: the entry point that composes the core with
// the auth plugins config enables, then stops cleanly on SIGTERM/SIGINT.
import { loadConfig } from '../nexus/config/index.js';
import { NexusError } from '../nexus/errors.js';
import { createLogger } from '../nexus/log.js';
import { startServer } from '../nexus/server.js';
import { enabledPlugins } from '../plugins/index.js';

const log = createLogger();
try {
  const config = loadConfig();
  const server = await startServer(config, log, { plugins: enabledPlugins(config) });
  const shutdown = (signal: string) => {
    log.info({ signal }, 'shutting down: no new connections, finishing in-flight requests');
    // The contract: exit within 10 s whatever happens.
    setTimeout(() => process.exit(1), 10_000).unref();
    server.stop(8000).then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
} catch (err) {
  const message = err instanceof NexusError ? err.message : (err as Error).message;
  log.fatal({ code: err instanceof NexusError ? err.code : 'internal' }, message);
  process.stderr.write(`nexus: ${message}\n`);
  process.exit(1);
}
