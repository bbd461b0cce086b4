import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { parseSpiffeId } from '../nexus/auth/spiffe.js';
import { issueDevSvid } from '../nexus/pki/dev-pki.js';
import { runCli, scriptContext } from './lib/cli.js';

const program = new Command('nexus-pki').description('Dev PKI: issue more SVIDs from the CA that npm start created');

program
  .command('issue')
  .description('issue an X509-SVID for a SPIFFE ID (files <name>.crt, <name>.key and ca.crt in --out)')
  .requiredOption('--spiffe-id <id>', 'e.g. spiffe://nexus.local/ci/deployer')
  .requiredOption('--out <dir>', 'directory to write into')
  .option('--name <name>', 'file name stem (default: the last segment of the ID)')
  .option('--days <n>', 'validity in days', (v) => {
    if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 3650) throw new InvalidArgumentError('expected 1 to 3650');
    return Number(v);
  }, 30)
  .action((opts: { spiffeId: string; out: string; name?: string; days: number }) =>
    runCli('nexus-pki', async () => {
      const { config } = await scriptContext();
      const parsed = parseSpiffeId(opts.spiffeId);
      if ('invalid' in parsed) throw new Error(`--spiffe-id is not a valid SPIFFE ID: ${parsed.invalid}`);
      if (parsed.trustDomain !== config.trustDomain) {
        throw new Error(`--spiffe-id is in trust domain ${parsed.trustDomain}, but NEXUS_TRUST_DOMAIN is ${config.trustDomain}`);
      }
      const name = opts.name ?? (parsed.path.split('/').pop() || 'svid');
      const files = await issueDevSvid(config.dataDir, parsed.id, path.resolve(opts.out), name, opts.days);
      console.log(`issued ${parsed.id} (valid ${opts.days} days)\n  cert ${files.cert}\n  key  ${files.key}\n  ca   ${files.ca}`);
      console.log(`use it: NEXUS_CERT=${files.cert} NEXUS_KEY=${files.key} npx pilot ...`);
    }),
  );

program.parse();
