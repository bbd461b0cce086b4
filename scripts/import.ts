// nexus-import: copies secrets from another store into Nexus, through the
// mTLS API with Pilot's connection settings (NEXUS_ADDR, NEXUS_CERT, NEXUS_KEY,
// NEXUS_CA, or the dev PKI). Exit codes as Pilot's: 0 ok, 1 refused or failed
// by a server or the network (or a secret Nexus refused), 2 usage error.
import { Command, CommanderError, Option } from 'commander';
import fs from 'node:fs';
import { importVault, nexusTarget, summaryLine } from './lib/import-vault.js';
import { connect, env, PilotError, UsageError } from './lib/pilot-conn.js';
import { readToken, vaultSource } from './lib/vault-source.js';
import { packageVersion } from './lib/version.js';

interface VaultOpts {
  addr: string;
  tokenFile: string;
  mount: string;
  path: string;
  allVersions: boolean;
  dryRun: boolean;
}

const MOUNT = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

function fail(err: unknown): void {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else if (err instanceof UsageError) {
    process.stderr.write(`nexus-import: ${err.message}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`nexus-import: ${(err as Error).message}\n`);
    if (process.env.NEXUS_DEBUG && err instanceof Error && !(err instanceof PilotError)) process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  }
}

async function fromVault(o: VaultOpts): Promise<void> {
  const mount = o.mount.replace(/^\/+|\/+$/g, '');
  if (!MOUNT.test(mount) || mount.split('/').some((s) => s === '.' || s === '..')) throw new UsageError(`--mount must be a mount path such as secret or kv/team, got ${JSON.stringify(o.mount)}`);
  const path = o.path.replace(/^\/+|\/+$/g, '');
  const caFile = env('VAULT_CACERT');
  let ca: string | undefined;
  if (caFile) {
    try {
      ca = fs.readFileSync(caFile, 'utf8');
    } catch {
      throw new UsageError(`cannot read VAULT_CACERT ${caFile}`);
    }
  }
  const vault = vaultSource({ addr: o.addr, token: readToken(o.tokenFile), mount, ...(ca ? { ca } : {}) });
  const nexus = nexusTarget(await connect(undefined));
  const summary = await importVault(vault, nexus, { path, allVersions: o.allVersions, dryRun: o.dryRun, progress: (line) => process.stderr.write(`${line}\n`) });
  if (summary.secrets === 0) process.stderr.write(`nexus-import: nothing found under ${[mount, path].filter(Boolean).join('/')}/ (a KV v2 mount the token may list?)\n`);
  process.stdout.write(`nexus-import: ${summaryLine(summary, o.dryRun)}\n`);
  if (summary.failed > 0) process.exitCode = 1;
}

const program = new Command('nexus-import')
  .description("Copy secrets into Nexus over its mTLS API (Pilot's NEXUS_ADDR, NEXUS_CERT, NEXUS_KEY, NEXUS_CA). Safe to run again: what Nexus holds already is not written twice.")
  .version(packageVersion())
  .exitOverride()
  .showHelpAfterError('(nexus-import --help for usage)');
program
  .command('vault')
  .description('copy a Vault KV v2 mount: the latest version of each secret, or every version in order (--all-versions); soft-deleted and destroyed versions are reported, never copied')
  .requiredOption('--addr <url>', "Vault's address, e.g. https://vault.example.com:8200 (VAULT_CACERT: a CA file for it)")
  .requiredOption('--token-file <file>', 'a file holding a Vault token that may list and read the mount (e.g. ~/.vault-token)')
  .requiredOption('--mount <mount>', 'the KV v2 mount, e.g. secret')
  .addOption(new Option('--path <path>', 'only this folder (or secret) of the mount').default(''))
  .option('--all-versions', 'copy every live version in order, not only the latest', false)
  .option('--dry-run', 'say what would be copied; write nothing', false)
  .exitOverride()
  .showHelpAfterError('(nexus-import vault --help for usage)')
  .action((o: VaultOpts) => fromVault(o));

program.parseAsync().catch(fail);
