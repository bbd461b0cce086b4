// The token file of `--token-out FILE` and `nexus-ci revoke --token-file FILE`:
// for CI systems where a later step ends the job's credentials (GitLab's
// after_script runs even when the script failed, in a shell of its own).
// The file holds the exchanged token alone, mode 0600, and is removed once
// the token is gone.
import fs from 'node:fs';
import type { TlsSetup } from './client.js';
import { giveBack, tokenId } from './fetch.js';
import { DEFAULT_RETRY } from './retry.js';

// What can be a Bearer credential (RFC 7235 token68), within reason: a file that holds anything else was not written here.
const TOKEN68 = /^[A-Za-z0-9._~+/-]{16,4096}=*$/;

export class TokenFileError extends Error {}

/** Reads and checks the token file; throws TokenFileError naming the file. */
export function readTokenFile(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new TokenFileError(`no token to revoke: ${file} does not exist (was it written by --token-out, in this job's directory?)`);
    throw new TokenFileError(`cannot read the token file ${file}: ${code ?? (err as Error).message}`);
  }
  const token = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (!TOKEN68.test(token)) throw new TokenFileError(`${file} does not hold a token written by --token-out (empty, several lines, or characters no token has): nothing was sent`);
  return token;
}

/**
 * `nexus-ci revoke --token-file FILE`: gives the token back (the server ends
 * its leases with it) and removes the file. A token already revoked or
 * expired is no failure; a server that cannot be reached is (exit 1), and
 * the file stays for a retry. Returns the exit code, having said what happened.
 */
export async function revokeTokenFile(file: string, url: string, tls: TlsSetup, say: (line: string) => void): Promise<number> {
  let token: string;
  try {
    token = readTokenFile(file);
  } catch (err) {
    if (!(err instanceof TokenFileError)) throw err;
    say(err.message);
    return 1;
  }
  const id = tokenId(token);
  const g = await giveBack(url, tls, token, { ...DEFAULT_RETRY, log: say });
  if (g.outcome === 'failed') {
    say(`${g.warning} (${file} is kept: run revoke again)`);
    return 1;
  }
  fs.rmSync(file, { force: true });
  say(g.outcome === 'revoked' ? `revoked the job's token ${id} and its leases` : `the job's token ${id} was already revoked or expired`);
  return 0;
}
