import { Command, InvalidArgumentError } from 'commander';
import { openStorage } from '../nexus/core.js';
import { StartupError } from '../nexus/errors.js';
import { initSeal } from '../nexus/seal/init.js';
import { migrateSeal, recoverOntoToken } from '../nexus/seal/migrate.js';
import { SEAL_MODES, type SealMode } from '../nexus/seal/record.js';
import { recordScriptRun } from '../nexus/audit/script-trail.js';
import type { Config } from '../nexus/config/index.js';
import type { Logger } from '../nexus/log.js';
import type { Storage } from '../nexus/storage/storage.js';
import os from 'node:os';
import { printShares, readShares } from './lib/seal-cli.js';
import { lockDataDir } from '../nexus/storage/lock.js';
import { runCli, scriptContext } from './lib/cli.js';

function count(raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 2 || n > 255) throw new InvalidArgumentError('expected an integer from 2 to 255');
  return n;
}

const program = new Command('nexus-operator').description('Create and change the seal of the root key (Nexus stopped; same environment as the server).');

program
  .command('init')
  .description('create the root key and its seal (NEXUS_SEAL=shamir or pkcs11); prints the shares once')
  .requiredOption('--shares <n>', 'shares to make', count)
  .requiredOption('--threshold <t>', 'shares needed', count)
  .option('--json', 'print {"shares":[...],"threshold":T}', false)
  .action((o: { shares: number; threshold: number; json: boolean }) =>
    runCli('nexus-operator', async () => {
      if (o.threshold > o.shares) throw new InvalidArgumentError(`--threshold ${o.threshold} is more than --shares ${o.shares}`);
      const { config, log } = await scriptContext();
      if (config.seal === 'file') throw new StartupError('NEXUS_SEAL=file keeps the root key in a file and needs no init: set NEXUS_SEAL=shamir or pkcs11');
      printShares(await withStoppedNexus(config, log, (storage) => initSeal(config, storage, o.shares, o.threshold)), o.json);
    }),
  );

/** Nexus stopped: the data dir's lock, and the storage with its schema. */
async function withStoppedNexus<T>(config: Config, log: Logger, fn: (storage: Storage) => Promise<T>): Promise<T> {
  const lock = lockDataDir(config.dataDir, 'nexus-operator');
  try {
    const storage = await openStorage(config, log);
    try {
      return await fn(storage);
    } finally {
      await storage.close();
    }
  } finally {
    lock.release();
  }
}

program
  .command('migrate-seal')
  .description('re-wrap the root key under another seal (Nexus stopped); kill-safe, re-runnable. From shamir: the unseal shares on stdin (or prompted)')
  .requiredOption('--to <mode>', `the new seal: ${SEAL_MODES.join(', ')}`, (v: string) => {
    if (!(SEAL_MODES as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected one of ${SEAL_MODES.join(', ')}`);
    return v as SealMode;
  })
  .option('--shares <n>', 'shares to make (to shamir; recovery shares to pkcs11)', count, 5)
  .option('--threshold <t>', 'shares needed', count, 3)
  .option('--json', 'print {"shares":[...],"threshold":T} when shares are made', false)
  .action((o: { to: SealMode; shares: number; threshold: number; json: boolean }) =>
    runCli('nexus-operator', async () => {
      if (o.threshold > o.shares) throw new InvalidArgumentError(`--threshold ${o.threshold} is more than --shares ${o.shares}`);
      const { config, log } = await scriptContext();
      const r = await withStoppedNexus(config, log, (storage) =>
        migrateSeal(config, storage, o.to, {
          shares: o.shares,
          threshold: o.threshold,
          readShares,
          printShares: (res) => printShares(res, o.json),
          // The trail is keyed by the root key: a sealed database's only copy is the one this run opened.
          recorded: async (root, from) => {
            await recordScriptRun(config, { port: 'script', principal: { os_user: os.userInfo().username, pid: process.pid }, action: `seal.migrate ${from} -> ${o.to}`, decision: 'allow', status: 0 }, root);
          },
        }),
      );
      const note = r.alreadyDone ? `the seal is already ${r.to}` : `migrated the seal: ${r.from} -> ${r.to}`;
      const file = r.keyFile ? (r.to === 'file' ? `; the root key is now in ${r.keyFile}` : `; removed ${r.keyFile}`) : '';
      (o.json ? console.error : console.log)(`${note}${file}; start Nexus with NEXUS_SEAL=${r.to}`);
    }),
  );

program
  .command('recover')
  .description('pkcs11: rebuild the root key from recovery shares (stdin, or prompted) and wrap it by the token key now configured (Nexus stopped)')
  .action(() =>
    runCli('nexus-operator', async () => {
      const { config, log } = await scriptContext();
      const r = await withStoppedNexus(config, log, (storage) => recoverOntoToken(config, storage, readShares));
      console.log(`the root key is wrapped by the token key ${r.keyLabel}: start Nexus with NEXUS_SEAL=pkcs11`);
    }),
  );

program.parse();
