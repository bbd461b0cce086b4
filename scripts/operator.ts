import { Command, InvalidArgumentError } from 'commander';
import { openStorage } from '../nexus/core.js';
import { StartupError } from '../nexus/errors.js';
import { initSeal, type InitResult } from '../nexus/seal/init.js';
import { lockDataDir } from '../nexus/storage/lock.js';
import { runCli, scriptContext } from './lib/cli.js';

function count(raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 2 || n > 255) throw new InvalidArgumentError('expected an integer from 2 to 255');
  return n;
}

/** Shares go to stdout once; nothing else keeps them. */
function printShares(r: InitResult, json: boolean): void {
  if (json) {
    console.log(JSON.stringify({ shares: r.shares, threshold: r.threshold, ...(r.kind === 'recovery' ? { recovery: true } : {}), root_kcv: r.kcv }));
    return;
  }
  const what = r.kind === 'recovery' ? 'Recovery share' : 'Unseal share';
  r.shares.forEach((s, i) => console.log(`${what} ${i + 1}: ${s}`));
  console.log('');
  if (r.kind === 'recovery') {
    console.log(`The token unseals Nexus at start. These ${r.shares.length} recovery shares (any ${r.threshold}) never unseal; they only rebuild the root key onto a new token (nexus-operator recover).`);
  } else {
    console.log(`Nexus starts sealed. Any ${r.threshold} of these ${r.shares.length} shares unseal it (pilot operator unseal).`);
  }
  console.log('They are printed once and stored nowhere: give each to a different person now.');
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
      const lock = lockDataDir(config.dataDir, 'nexus-operator');
      try {
        const storage = await openStorage(config, log);
        try {
          printShares(await initSeal(config, storage, o.shares, o.threshold), o.json);
        } finally {
          await storage.close();
        }
      } finally {
        lock.release();
      }
    }),
  );

program.parse();
