import os from 'node:os';
import { recordScriptRun } from '../../nexus/audit/script-trail.js';
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

/** One audit record per admin script run, in the scripts' chain of the data dir's trail (once there is a database). */
async function auditRun(name: string, code: number, reason?: string): Promise<void> {
  try {
    await recordScriptRun(loadConfig(), {
      port: 'script',
      principal: { os_user: os.userInfo().username, pid: process.pid },
      action: [name, ...process.argv.slice(2)].join(' '),
      decision: code === 0 ? 'allow' : 'error',
      status: code,
      ...(reason ? { reason } : {}),
    });
  } catch (err) {
    process.stderr.write(`${name}: warning: this run could not be recorded in the audit trail: ${(err as Error).message}\n`);
  }
}

/** Runs a script's main: one plain line on stderr and a non-zero exit on failure. */
export function runCli(name: string, main: () => Promise<number | void>): void {
  main().then(
    async (code) => {
      process.exitCode = code ?? 0;
      await auditRun(name, code ?? 0);
    },
    (err: unknown) => {
      const msg = err instanceof NexusError || err instanceof Error ? err.message : String(err);
      process.stderr.write(`${name}: error: ${msg}\n`);
      if (process.env.NEXUS_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
      process.exitCode = 1;
      return auditRun(name, 1, msg);
    },
  );
}
