import fs from 'node:fs';
import { Command } from 'commander';
import { connectStorage } from '../nexus/core.js';
import { lockDataDir } from '../nexus/storage/lock.js';
import { assertKnownSchema, loadMigrations } from '../nexus/storage/migrator.js';
import { runCli, scriptContext } from './lib/cli.js';

const program = new Command('nexus-migrate').description('Show or apply database migrations (same env as the server: SQLite in the data dir, or NEXUS_DATABASE_URL)');

program
  .command('status')
  .description('list applied and pending migrations')
  .action(() =>
    runCli('nexus-migrate', async () => {
      const { config } = await scriptContext();
      if (!config.databaseUrl && !fs.existsSync(config.dbFile)) {
        // Report without creating the file: status never changes anything.
        const all = loadMigrations();
        console.log(`no database at ${config.dbFile} yet: every migration is pending`);
        for (const p of all) console.log(`pending  ${String(p.version).padStart(3, '0')}_${p.name}`);
        console.log(`0 applied, ${all.length} pending`);
        return;
      }
      const storage = connectStorage(config);
      try {
        const s = await storage.migrationStatus();
        for (const a of s.applied) console.log(`applied  ${String(a.version).padStart(3, '0')}_${a.name}  ${a.applied_at}`);
        for (const p of s.pending) console.log(`pending  ${String(p.version).padStart(3, '0')}_${p.name}`);
        for (const u of s.unknown) console.log(`unknown  ${String(u.version).padStart(3, '0')}_${u.name}  (from a newer Nexus)`);
        console.log(`${s.applied.length} applied, ${s.pending.length} pending${s.unknown.length ? `, ${s.unknown.length} unknown` : ''} (${storage.engine}: ${storage.location})`);
        assertKnownSchema(s);
      } finally {
        await storage.close();
      }
    }),
  );

program
  .command('up')
  .description('apply every pending migration, in order (on PostgreSQL, one process at a time: others wait on an advisory lock)')
  .action(() =>
    runCli('nexus-migrate', async () => {
      const { config } = await scriptContext();
      // SQLite: the data dir's owner migrates. PostgreSQL: the advisory lock in migrateUp serializes every replica and script.
      const lock = config.databaseUrl ? null : lockDataDir(config.dataDir, 'nexus-migrate');
      const storage = connectStorage(config);
      try {
        const applied = await storage.migrateUp();
        for (const m of applied) console.log(`applied  ${String(m.version).padStart(3, '0')}_${m.name}`);
        console.log(applied.length ? `${applied.length} migration(s) applied` : 'nothing to do: the schema is up to date');
      } finally {
        await storage.close();
        lock?.release();
      }
    }),
  );

program.parse();
