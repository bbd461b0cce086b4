import { loadConfig, type Config } from '../../nexus/config/index.js';
import { initSodium } from '../../nexus/crypto/sodium.js';
import { NexusError } from '../../nexus/errors.js';
import { createLogger, type Logger } from '../../nexus/log.js';

export interface ScriptContext {
  config: Config;
  log: Logger;
}

/** Config and a quiet stderr logger: scripts speak through their own output. */
export async function scriptContext(): Promise<ScriptContext> {
  await initSodium();
  return { config: loadConfig(), log: createLogger({ level: 'warn', stream: process.stderr }) };
}

/** Runs a script's main: one plain line on stderr and a non-zero exit on failure. */
export function runCli(name: string, main: () => Promise<number | void>): void {
  main().then(
    (code) => {
      process.exitCode = code ?? 0;
    },
    (err: unknown) => {
      const msg = err instanceof NexusError || err instanceof Error ? err.message : String(err);
      process.stderr.write(`${name}: error: ${msg}\n`);
      if (process.env.NEXUS_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
      process.exitCode = 1;
    },
  );
}
