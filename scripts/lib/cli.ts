import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuditTrail } from '../../nexus/audit/trail.js';
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

/** One audit record per admin script run, in the data dir's trail (if there is a data dir). */
function auditRun(name: string, code: number, reason?: string): void {
  try {
    const { dataDir } = loadConfig();
    if (!fs.existsSync(dataDir)) return;
    void new AuditTrail(path.join(dataDir, 'audit.jsonl'), null).record({
      port: 'script',
      principal: { os_user: os.userInfo().username, pid: process.pid },
      action: [name, ...process.argv.slice(2)].join(' '),
      decision: code === 0 ? 'allow' : 'error',
      status: code,
      ...(reason ? { reason } : {}),
    });
  } catch {
    /* a script's own failure is reported on stderr already */
  }
}

/** Runs a script's main: one plain line on stderr and a non-zero exit on failure. */
export function runCli(name: string, main: () => Promise<number | void>): void {
  main().then(
    (code) => {
      process.exitCode = code ?? 0;
      auditRun(name, code ?? 0);
    },
    (err: unknown) => {
      const msg = err instanceof NexusError || err instanceof Error ? err.message : String(err);
      process.stderr.write(`${name}: error: ${msg}\n`);
      if (process.env.NEXUS_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
      process.exitCode = 1;
      auditRun(name, 1, msg);
    },
  );
}
