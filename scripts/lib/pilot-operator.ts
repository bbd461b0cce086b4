import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { PilotError, type PilotIo } from './pilot-conn.js';

interface SealStatus {
  sealed: boolean;
  type: string;
  threshold: number;
  shares: number;
  progress: number;
  nonce: string;
}

function showStatus(s: SealStatus): string {
  if (!s.sealed) return `unsealed (${s.type} seal)`;
  return s.threshold > 0 ? `sealed (${s.type}): ${s.progress} of ${s.threshold} shares given` : `sealed (${s.type}): restart Nexus to unseal it through its token`;
}

/**
 * A share from a prompt without echo (a terminal), or the first line of
 * stdin otherwise. The text lives in one string, dropped as soon as it is sent.
 */
export function readShare(input: NodeJS.ReadStream = process.stdin, prompt: NodeJS.WriteStream = process.stderr): Promise<string> {
  if (!input.isTTY) {
    return new Promise((resolve, reject) => {
      let text = '';
      input.setEncoding('utf8');
      input.on('data', (d: string) => (text += d));
      input.on('error', reject);
      input.on('end', () => resolve(text.split('\n')[0]!.trim()));
    });
  }
  return new Promise((resolve, reject) => {
    prompt.write('Unseal share (not echoed): ');
    input.setRawMode(true);
    input.setEncoding('utf8');
    let text = '';
    const done = (err: Error | null) => {
      input.setRawMode(false);
      input.pause();
      input.off('data', onData);
      prompt.write('\n');
      if (err) reject(err);
      else resolve(text.trim());
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done(null);
        if (ch === '\u0003' || ch === '\u0004') return done(new PilotError('unseal cancelled'));
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
        else text += ch;
      }
    };
    input.on('data', onData);
    input.resume();
  });
}

/** `pilot operator ...`: the seal of a running Nexus; init runs beside a stopped one (nexus-operator). */
export function operatorCommands(program: Command, deps: PilotIo, build: boolean): void {
  const operator = program.command('operator').description('the seal: status, unseal, seal (admin); init through nexus-operator');
  if (!build) return;

  operator
    .command('seal-status')
    .description('whether Nexus is sealed, and the unseal progress (any valid SVID)')
    .action(async (_o: unknown, cmd: Command) => {
      const s = await deps.get<SealStatus>(cmd, 'GET', '/v1/sys/seal-status');
      deps.out(cmd, s, () => showStatus(s));
    });

  operator
    .command('unseal')
    .description('give one unseal share: typed at a prompt without echo, or read from stdin')
    .option('--reset', 'discard the shares given so far in this attempt')
    .action(async (opts: { reset?: boolean }, cmd: Command) => {
      if (opts.reset) {
        const s = await deps.get<SealStatus>(cmd, 'PUT', '/v1/sys/unseal', { reset: true });
        deps.out(cmd, s, () => `attempt reset; ${showStatus(s)}`);
        return;
      }
      const before = await deps.get<SealStatus>(cmd, 'GET', '/v1/sys/seal-status');
      if (!before.sealed) {
        deps.out(cmd, before, () => showStatus(before));
        return;
      }
      const key = await readShare();
      if (!key) throw new PilotError('no share given');
      const s = await deps.get<SealStatus>(cmd, 'PUT', '/v1/sys/unseal', { key, nonce: before.nonce });
      deps.out(cmd, s, () => showStatus(s));
    });

  operator
    .command('seal')
    .description('seal a running Nexus: the root key leaves its memory (admin)')
    .action(async (_o: unknown, cmd: Command) => {
      const s = await deps.get<SealStatus>(cmd, 'PUT', '/v1/sys/seal');
      deps.out(cmd, s, () => showStatus(s));
    });

  operator
    .command('init')
    .description('create the root key and its seal: runs nexus-operator init beside the stopped server (same environment)')
    .requiredOption('--shares <n>', 'shares to make')
    .requiredOption('--threshold <t>', 'shares needed')
    .action(async (opts: { shares: string; threshold: string }, cmd: Command) => {
      const args = ['init', '--shares', opts.shares, '--threshold', opts.threshold, ...(cmd.optsWithGlobals().json ? ['--json'] : [])];
      const code = await new Promise<number>((resolve, reject) => {
        const child = spawn('nexus-operator', args, { stdio: 'inherit' });
        child.on('error', (err: NodeJS.ErrnoException) =>
          reject(err.code === 'ENOENT' ? new PilotError('nexus-operator is not on PATH: run `npx nexus-operator init` in the Nexus install, beside the stopped server') : err),
        );
        child.on('close', (c) => resolve(c ?? 1));
      });
      if (code !== 0) throw new PilotError(`nexus-operator init exited with ${code}`);
    });
}
