import { Command, InvalidArgumentError } from 'commander';
import cliProgress from 'cli-progress';
import { openStorage } from '../nexus/core.js';
import { rotateRootKey, type RotationPhase } from '../nexus/crypto/rotation.js';
import { StartupError } from '../nexus/errors.js';
import { lockDataDir } from '../nexus/storage/lock.js';
import { runCli, scriptContext } from './lib/cli.js';
import { printShares, readShares } from './lib/seal-cli.js';
import { rotateSealedRootKey } from '../nexus/seal/rotate.js';
import type { Config } from '../nexus/config/index.js';
import type { Logger } from '../nexus/log.js';

/** A shamir or pkcs11 seal: the current seal opens the old key (shares on stdin for shamir); new shares are printed. */
async function rotateUnderSeal(config: Config, log: Logger): Promise<void> {
  const lock = lockDataDir(config.dataDir, 'nexus-rotate-key');
  try {
    const storage = await openStorage(config, log);
    try {
      const r = await rotateSealedRootKey(config, storage, {
        reencrypt: opts.reencrypt,
        batchSize: opts.batchSize,
        onProgress: (phase, done, total) => console.error(`${phase} ${done}/${total}`),
        readShares,
        printShares: (res) => printShares(res, opts.json),
      });
      await storage.publish('keys');
      console.error(
        `rotated the root key under the ${config.seal} seal: ${r.rewrapped} data key(s) re-wrapped` +
          (r.reencrypted ? `, ${r.reencrypted} secret version(s) re-encrypted` : '') +
          ` (check value ${r.oldKcv} -> ${r.newKcv})` +
          (config.seal === 'shamir' ? '; the previous unseal shares no longer open it: use the new ones printed above' : '; new recovery shares printed above'),
      );
    } finally {
      await storage.close();
    }
  } finally {
    lock.release();
  }
}

function positiveInt(raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > 100_000) throw new InvalidArgumentError('expected an integer from 1 to 100000');
  return n;
}

const program = new Command('nexus-rotate-key')
  .description('Rotate the root key (Nexus must be stopped). Safe to kill and re-run.')
  .option('--reencrypt', 'also re-encrypt every secret under a new data key', false)
  .option('--batch-size <n>', 'rows per transaction', positiveInt, 500)
  .option('--json', 'shamir or pkcs11 seal: print the new shares as {"shares":[...],"threshold":T}', false)
  .parse();

const opts = program.opts<{ reencrypt: boolean; batchSize: number; json: boolean }>();

runCli('nexus-rotate-key', async () => {
  const { config, log } = await scriptContext();
  if (config.seal !== 'file') return rotateUnderSeal(config, log);
  if (config.rootKeyInline) {
    throw new StartupError('the root key comes from NEXUS_ROOT_KEY; rotation replaces NEXUS_ROOT_KEY_FILE, so unset NEXUS_ROOT_KEY and use the file');
  }
  const lock = lockDataDir(config.dataDir, 'nexus-rotate-key');
  const storage = await openStorage(config, log);
  const tty = Boolean(process.stdout.isTTY);
  const bars = new Map<RotationPhase, cliProgress.SingleBar>();
  try {
    const result = await rotateRootKey({
      storage,
      rootKeyFile: config.rootKeyFile,
      reencrypt: opts.reencrypt,
      batchSize: opts.batchSize,
      onProgress: (phase, done, total) => {
        if (!tty) {
          console.log(`${phase} ${done}/${total}`);
          return;
        }
        let bar = bars.get(phase);
        if (!bar) {
          bar = new cliProgress.SingleBar({ format: `${phase.padEnd(9)} [{bar}] {value}/{total}` }, cliProgress.Presets.shades_classic);
          bar.start(total, done);
          bars.set(phase, bar);
        }
        bar.update(done);
      },
    });
    for (const b of bars.values()) b.stop();
    // Replicas sharing the database drop the data keys they hold unwrapped.
    await storage.publish('keys');
    if (result.resumedFinalStep) {
      console.log(`finished an interrupted rotation: ${config.rootKeyFile} now holds the new root key (check value ${result.newKcv})`);
    } else {
      console.log(
        `rotated the root key: ${result.rewrapped} data key(s) re-wrapped` +
          (opts.reencrypt || result.reencrypted ? `, ${result.reencrypted} secret version(s) re-encrypted under a new data key` : '') +
          `; ${config.rootKeyFile} replaced (check value ${result.oldKcv} -> ${result.newKcv})`,
      );
    }
    console.log(
      `the previous root key (check value ${result.oldKcv}) is kept as ${result.keptOldKey} (mode 0600): backups made before this rotation need it; ` +
        'delete it once the last of them has expired',
    );
  } finally {
    for (const b of bars.values()) b.stop();
    await storage.close();
    lock.release();
  }
});
