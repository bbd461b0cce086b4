import fs from 'node:fs';
import { Command } from 'commander';
import { openDatabase } from '../nexus/storage/db.js';
import { lockDataDir } from '../nexus/storage/lock.js';
import { assertKnownSchema, loadMigrations, migrateUp, migrationStatus } from '../nexus/storage/migrator.js';
import { runCli, scriptContext } from './lib/cli.js';

const program = new Command('nexus-migrate').description('Show or apply database migrations (same env as the server)');

program
  .command('status')
  .description('list applied and pending migrations')
  .action(() =>
    runCli('nexus-migrate', async () => {
      const { config } = await scriptContext();
      if (!fs.existsSync(config.dbFile)) {
        // Report without creating the file: status never changes anything.
        const all = loadMigrations();
        console.log(`no database at ${config.dbFile} yet: every migration is pending`);
        for (const p of all) console.log(`pending  ${String(p.version).padStart(3, '0')}_${p.name}`);
        console.log(`0 applied, ${all.length} pending`);
        return;
      }
      const db = openDatabase(config.dbFile);
      try {
        const s = migrationStatus(db);
        for (const a of s.applied) console.log(`applied  ${String(a.version).padStart(3, '0')}_${a.name}  ${a.applied_at}`);
        for (const p of s.pending) console.log(`pending  ${String(p.version).padStart(3, '0')}_${p.name}`);
        for (const u of s.unknown) console.log(`unknown  ${String(u.version).padStart(3, '0')}_${u.name}  (from a newer Nexus)`);
        console.log(`${s.applied.length} applied, ${s.pending.length} pending${s.unknown.length ? `, ${s.unknown.length} unknown` : ''}`);
        assertKnownSchema(s);
      } finally {
        db.close();
      }
    }),
  );

program
  .command('up')
  .description('apply every pending migration, in order')
  .action(() =>
    runCli('nexus-migrate', async () => {
      const { config } = await scriptContext();
      const lock = lockDataDir(config.dataDir, 'nexus-migrate');
      const db = openDatabase(config.dbFile);
      try {
        const applied = migrateUp(db);
        for (const m of applied) console.log(`applied  ${String(m.version).padStart(3, '0')}_${m.name}`);
        console.log(applied.length ? `${applied.length} migration(s) applied` : 'nothing to do: the schema is up to date');
      } finally {
        db.close();
        lock.release();
      }
    }),
  );

program.parse();
