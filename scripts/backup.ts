import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { NexusError } from '../nexus/errors.js';
import { integrityCheck, openDatabase } from '../nexus/storage/db.js';
import { runCli, scriptContext } from './lib/cli.js';
import { withTempFile } from './lib/temp-file.js';

const program = new Command('nexus-backup')
  .description('Write a consistent copy of the database while Nexus runs (SQLite online backup). The root key is NOT included.')
  .argument('<file>', 'where to write the copy')
  .option('--force', 'overwrite <file> if it exists', false)
  .parse();

const target = path.resolve(program.args[0]!);
const { force } = program.opts<{ force: boolean }>();

runCli('nexus-backup', async () => {
  const { config } = await scriptContext();
  if (config.databaseUrl) {
    // The database is PostgreSQL's to copy consistently; the root key is never in it either way.
    throw new NexusError('bad_request', 'NEXUS_DATABASE_URL is set: back up PostgreSQL with pg_dump (see README, Running several replicas), and keep the root key apart');
  }
  if (!fs.existsSync(config.dbFile)) throw new NexusError('not_found', `no database at ${config.dbFile}`);
  if (fs.existsSync(target) && !force) throw new NexusError('conflict', `${target} exists; pass --force to overwrite`);
  const summary = await withTempFile(`${target}.partial-${process.pid}`, async (tmp) => {
    const db = openDatabase(config.dbFile);
    try {
      await db.backup(tmp);
    } finally {
      db.close();
    }
    const copy = openDatabase(tmp);
    let said: string;
    try {
      const check = integrityCheck(copy);
      if (check !== 'ok') throw new NexusError('data_integrity', `the copy failed integrity_check: ${check}`);
      // Make the copy one self-contained file.
      copy.pragma('journal_mode = DELETE');
      const secrets = (copy.prepare('SELECT count(*) AS n FROM secrets').get() as { n: number }).n;
      const schema = (copy.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number }).v;
      const kcv = (copy.prepare("SELECT value FROM meta WHERE key = 'root_kcv'").get() as { value: string } | undefined)?.value;
      said = `${secrets} secret(s), schema ${schema}, integrity ok, needs the root key with check value ${kcv ?? '(none yet)'}`;
    } finally {
      copy.close();
    }
    fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, target);
    return said;
  });
  console.log(`backup written to ${target}: ${summary}`);
});
