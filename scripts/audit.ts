import path from 'node:path';
import { Command } from 'commander';
import { AuditKeys } from '../nexus/audit/keys.js';
import { SCRIPTS_TRAIL, SERVER_TRAIL, scriptsChain } from '../nexus/audit/script-trail.js';
import { verifyChain, verifyLines } from '../nexus/audit/verify.js';
import { readForwardedCopy } from '../nexus/audit/forwarded-copy.js';
import { compareWithWitness } from '../nexus/audit/witness.js';
import { loadConfig, type Config } from '../nexus/config/index.js';
import { readRootKey, type RootKey } from '../nexus/crypto/root-key.js';
import { connectStorage } from '../nexus/core.js';
import { openCurrentSeal } from '../nexus/seal/migrate.js';
import { readShares } from './lib/seal-cli.js';
import { initSodium } from '../nexus/crypto/sodium.js';
import { StartupError } from '../nexus/errors.js';
import { AuditAnchorRepo, AuditKeysRepo, type AuditKeyRow, type ChainHead } from '../nexus/storage/audit-repo.js';
import { PgStorage } from '../nexus/storage/postgres.js';
import { recordScriptSignal } from '../nexus/signals/script-signal.js';
import { openDatabase } from '../nexus/storage/db.js';

/**
 * The anchors and earlier audit keys, read-only. On PostgreSQL each replica's
 * server chain is anchored as `server@<NEXUS_REPLICA_ID>`: run verify with the
 * replica's own data dir and id.
 */
async function openAnchors(config: Config): Promise<{ keyRows: AuditKeyRow[]; anchors: Map<string, ChainHead>; server: string; scripts: string; close(): Promise<void> }> {
  if (config.databaseUrl) {
    const pg = new PgStorage(config.databaseUrl);
    try {
      return { keyRows: await pg.auditKeys.all(), anchors: await pg.auditAnchors.all(), server: `server@${config.replicaId}`, scripts: scriptsChain(config), close: () => pg.close() };
    } catch (err) {
      await pg.close();
      throw err;
    }
  }
  // Read-only: verify never writes, not even to the trail (it is one more reader beside the server).
  const db = openDatabase(config.dbFile, { readonly: true });
  const anchor = new AuditAnchorRepo(db);
  const anchors = new Map<string, ChainHead>();
  for (const chain of ['server', 'scripts']) {
    const head = anchor.get(chain);
    if (head) anchors.set(chain, head);
  }
  return {
    keyRows: new AuditKeysRepo(db).all(),
    anchors,
    server: 'server',
    scripts: 'scripts',
    close: async () => {
      db.close();
    },
  };
}

/** The local trail against a receiver's copy; prints the outcome, true when the trail holds everything the witness does. */
function checkWitness(witnessFile: string, chain: string, trail: string): boolean {
  const copy = readForwardedCopy(witnessFile, chain);
  const w = compareWithWitness(trail, copy.records);
  if (w.ok) {
    console.log(`witness agrees: the ${w.compared} record(s) of ${witnessFile} are in ${trail}${w.ahead > 0 ? ` (the trail has ${w.ahead} more, not yet forwarded)` : ''}`);
    return true;
  }
  for (const p of w.problems) process.stderr.write(`nexus-audit: witness: ${p}\n`);
  return false;
}

async function sealedRootKey(config: Config): Promise<RootKey> {
  const storage = connectStorage(config);
  try {
    return (await openCurrentSeal(config, storage, readShares)).root;
  } finally {
    await storage.close();
  }
}

const program = new Command('nexus-audit').description('The audit trail ($NEXUS_DATA_DIR/audit.jsonl, its rotated files, and audit-scripts.jsonl)');

program
  .command('verify')
  .description('check every record MAC and link, and each chain against its anchor in the database; exit 0 if intact, 1 naming every problem (first one first)')
  .option('--file <file>', "the server trail (default: $NEXUS_DATA_DIR/audit.jsonl), or a copy: a syslog receiver's file of forwarded records (repeats dropped)")
  .option('--witness <file>', "also compare the local trail with a syslog receiver's copy: fail, naming the first record, when the trail lacks or differs from what the receiver holds")
  .action(async (opts: { file?: string; witness?: string }) => {
    try {
      await initSodium();
      const config = loadConfig();
      // A shamir or pkcs11 seal: opened as the server opens it (shares on stdin, or the token).
      const root = config.seal === 'file' ? readRootKey(config) : await sealedRootKey(config);
      if (!root) throw new StartupError(`no root key (${config.rootKeyFile} or NEXUS_ROOT_KEY): the trail's MACs cannot be checked without it`);
      const { keyRows, anchors, server, scripts, close } = await openAnchors(config);
      let failed = false;
      try {
        const keys = new AuditKeys(root, keyRows);
        const chains: Array<[string, string]> = [
          [server, path.resolve(opts.file ?? path.join(config.dataDir, SERVER_TRAIL))],
          [scripts, path.join(config.dataDir, SCRIPTS_TRAIL)],
        ];
        for (const [chain, file] of chains) {
          const copy = chain === server && opts.file ? readForwardedCopy(file, chain) : null;
          if (copy?.syslog && copy.repeats > 0) console.log(`${file}: ${copy.repeats} repeated record(s) dropped (sent again after a lost connection)`);
          const r = copy?.syslog ? verifyLines(path.basename(file), copy.records.map((c) => c.line), keys, anchors.get(chain) ?? null) : verifyChain(file, keys, anchors.get(chain) ?? null);
          if (r.ok) {
            console.log(`audit trail intact: ${r.records} record(s) in ${file}${chain === server ? ' and its rotated files' : ''}`);
            continue;
          }
          failed = true;
          // The one write verify makes: a break it finds is an access signal (audit_integrity), listed by GET /v1/signals.
          await recordScriptSignal(config, `nexus-audit verify: ${file}: ${r.problems.length} problem(s), first: ${r.problems[0]}`);
          for (const p of r.problems) process.stderr.write(`nexus-audit: broken at ${p}\n`);
          process.stderr.write(`nexus-audit: ${file}: ${r.problems.length} problem(s) in ${r.records} record(s)\n`);
        }
        if (opts.witness) failed = !checkWitness(path.resolve(opts.witness), server, path.resolve(opts.file ?? path.join(config.dataDir, SERVER_TRAIL))) || failed;
      } finally {
        await close();
      }
      if (failed) process.exitCode = 1;
    } catch (err) {
      process.stderr.write(`nexus-audit: error: ${(err as Error).message}\n`);
      process.exitCode = 1;
    }
  });

await program.parseAsync();
