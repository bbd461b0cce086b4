// `npm start` / the `nexus` bin: the entry point that composes the core with
// the auth plugins config enables, then stops cleanly on SIGTERM/SIGINT.
// `nexus --check-config` validates the configuration and exits.
import { loadConfig, type Config } from '../nexus/config/index.js';
import { ConfigError, NexusError } from '../nexus/errors.js';
import { createLogger } from '../nexus/log.js';
import { startServer } from '../nexus/server.js';
import { enabledPlugins } from '../plugins/index.js';

function fail(err: unknown): never {
  const message = err instanceof NexusError ? err.message : (err as Error).message;
  process.stderr.write(`nexus: ${message}\n`);
  process.exit(1);
}

let config: Config;
try {
  config = loadConfig();
  for (const p of enabledPlugins(config)) p.checkConfig?.(config);
} catch (err) {
  if (err instanceof ConfigError || err instanceof NexusError) fail(err);
  throw err;
}

if (process.argv.includes('--check-config')) {
  const seeded = Object.keys(config.oidcSeed.issuers).length + Object.keys(config.oidcSeed.roles).length;
  console.log(`configuration ok${config.configFile ? ` (${config.configFile})` : ''}: data dir ${config.dataDir}, mTLS ${config.mtlsAddr.host}:${config.mtlsAddr.port}, OIDC ${config.oidcAddr ? `${config.oidcAddr.host}:${config.oidcAddr.port}` : 'off'}${seeded ? `, ${seeded} OIDC issuer(s)/role(s) to seed` : ''}`);
  process.exit(0);
}

const log = createLogger({ level: config.logLevel as 'info' });
try {
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
  log.fatal({ code: err instanceof NexusError ? err.code : 'internal' }, err instanceof Error ? err.message : String(err));
  fail(err);
}
