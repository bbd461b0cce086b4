import path from 'node:path';
import { Command } from 'commander';
import { verifyTrail } from '../nexus/audit/trail.js';
import { loadConfig } from '../nexus/config/index.js';

const program = new Command('nexus-audit').description('The audit trail ($NEXUS_DATA_DIR/audit.jsonl and its rotated files)');

program
  .command('verify')
  .description('walk the hash chain; exit 0 if intact, 1 naming the first broken record')
  .option('--file <file>', 'the trail (default: $NEXUS_DATA_DIR/audit.jsonl)')
  .action((opts: { file?: string }) => {
    try {
      const file = path.resolve(opts.file ?? path.join(loadConfig().dataDir, 'audit.jsonl'));
      const r = verifyTrail(file);
      if (r.ok) {
        console.log(`audit trail intact: ${r.records} record(s) in ${file}`);
      } else {
        process.stderr.write(`nexus-audit: broken at ${r.broken} (${r.records} record(s) before it verified)\n`);
        process.exitCode = 1;
      }
    } catch (err) {
      process.stderr.write(`nexus-audit: error: ${(err as Error).message}\n`);
      process.exitCode = 1;
    }
  });

program.parse();
