// `npm start` / the `nexus` bin: the entry point that composes the core with
// the auth plugins config enables, then stops cleanly on SIGTERM/SIGINT.
// `nexus --check-config` validates the configuration and the files it names, and exits.
import { checkConfigFiles } from '../nexus/config/files.js';
import { loadConfig, type Config } from '../nexus/config/index.js';
import { unknownVariables } from '../nexus/config/unknown-env.js';
import { ConfigError, NexusError } from '../nexus/errors.js';
import { createLogger } from '../nexus/log.js';
import { startServer } from '../nexus/server.js';
import { enabledPlugins } from '../plugins/index.js';

const USAGE = `Usage: nexus [--check-config | --help]

Starts the Nexus server: the mTLS port, and the OIDC port unless NEXUS_OIDC_ADDR=off.
Settings come from the environment (NEXUS_DATA_DIR, NEXUS_MTLS_ADDR, NEXUS_OIDC_ADDR,
NEXUS_TLS_CA/CERT/KEY, NEXUS_ROOT_KEY_FILE, NEXUS_AUDIT_FSYNC, ...) and the file named
by NEXUS_CONFIG (env wins); README.md, "Configuration", lists them all.

Options:
  --check-config  validate the configuration and every file it names, then exit
                  (0: ok, 1: the first problem, naming the setting); creates nothing
  -h, --help      print this help and exit
`;

function fail(err: unknown, code = 1): never {
  const message = err instanceof NexusError ? err.message : (err as Error).message;
  process.stderr.write(`nexus: ${message}\n`);
  process.exit(code);
}

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const unknown = args.find((a) => a !== '--check-config');
if (unknown !== undefined) {
  process.stderr.write(`nexus: unknown option ${unknown}\n${USAGE}`);
  process.exit(2);
}

let config: Config;
try {
  config = loadConfig();
  for (const p of enabledPlugins(config)) p.checkConfig?.(config);
  checkConfigFiles(config);
} catch (err) {
  if (err instanceof ConfigError || err instanceof NexusError) fail(err);
  throw err;
}

if (args.includes('--check-config')) {
  const seeded = Object.keys(config.oidcSeed.issuers).length + Object.keys(config.oidcSeed.roles).length;
  console.log(`configuration ok${config.configFile ? ` (${config.configFile})` : ''}: data dir ${config.dataDir}, mTLS ${config.mtlsAddr.host}:${config.mtlsAddr.port}, OIDC ${config.oidcAddr ? `${config.oidcAddr.host}:${config.oidcAddr.port}` : 'off'}${seeded ? `, ${seeded} OIDC issuer(s)/role(s) to seed` : ''}`);
  process.exit(0);
}

const log = createLogger({ level: config.logLevel as 'info' });
const unknownVars = unknownVariables(process.env);
if (unknownVars.length) {
  const named = unknownVars.map((u) => (u.suggestion ? `${u.name} (did you mean ${u.suggestion}?)` : u.name)).join(', ');
  log.warn({ variables: unknownVars.map((u) => u.name) }, `unknown NEXUS_* variables, ignored: ${named}`);
}
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
