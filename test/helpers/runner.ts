import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import YAML from 'yaml';
import { runNode, ROOT, tempDir, type RunResult } from './env.js';
import type { TestIdp } from './idp.js';

/**
 * A simulated GitHub Actions runner: the ID-token endpoint a job reaches
 * through ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN (backed by the test IdP, which
 * signs a token for the audience asked), and GITHUB_ENV / GITHUB_OUTPUT files.
 */
export interface Runner {
  env: Record<string, string>;
  dir: string;
  /** Audiences the endpoint was asked for, in order. */
  audiences: string[];
  githubEnv(): Record<string, string>;
  githubOutput(): Record<string, string>;
  /** What the action's main step saved for its post step (core.saveState, the GITHUB_STATE file). */
  githubState(): Record<string, string>;
  stop(): Promise<void>;
}

export async function startRunner(idp: TestIdp, claims: Record<string, unknown>): Promise<Runner> {
  const requestToken = `runner-${Math.random().toString(36).slice(2)}`;
  const audiences: string[] = [];
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://localhost');
    if (req.headers.authorization?.toLowerCase() !== `bearer ${requestToken}`) {
      res.writeHead(401).end('{}');
      return;
    }
    const aud = u.searchParams.get('audience') ?? 'https://github.com/acme';
    audiences.push(aud);
    void idp.token({ ...claims, aud }).then((value) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ value })));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const dir = tempDir('nexus-runner');
  const envFile = path.join(dir, 'github_env');
  const outFile = path.join(dir, 'github_output');
  const stateFile = path.join(dir, 'github_state');
  fs.writeFileSync(envFile, '');
  fs.writeFileSync(outFile, '');
  fs.writeFileSync(stateFile, '');
  return {
    dir,
    audiences,
    env: {
      GITHUB_ACTIONS: 'true',
      ACTIONS_ID_TOKEN_REQUEST_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token?api-version=2.0`,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: requestToken,
      GITHUB_ENV: envFile,
      GITHUB_OUTPUT: outFile,
      GITHUB_STATE: stateFile,
    },
    githubEnv: () => parseFileCommands(fs.readFileSync(envFile, 'utf8')),
    githubOutput: () => parseFileCommands(fs.readFileSync(outFile, 'utf8')),
    githubState: () => parseFileCommands(fs.readFileSync(stateFile, 'utf8')),
    stop: () => new Promise((r) => server.close(() => r())),
  };
}

/**
 * GITHUB_ENV / GITHUB_OUTPUT as the runner reads them: `NAME=value`, or the
 * multi-line form `NAME<<DELIM` ... `DELIM` (a value never contains its delimiter).
 */
export function parseFileCommands(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line) continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const body: string[] = [];
      for (i++; i < lines.length && lines[i] !== heredoc[2]; i++) body.push(lines[i]!);
      if (i >= lines.length) throw new Error(`unterminated ${heredoc[1]}<<${heredoc[2]}`);
      out[heredoc[1]!] = body.join('\n');
    } else {
      const eq = line.indexOf('=');
      out[line.slice(0, eq)] = line.slice(eq + 1);
    }
  }
  return out;
}

interface ActionYml {
  inputs: Record<string, { default?: string }>;
  runs: { main: string; post?: string; 'post-if'?: string };
}

const actionYml = () => YAML.parse(fs.readFileSync(path.join(ROOT, 'action.yml'), 'utf8')) as ActionYml;

/** One of the action's committed bundles as the runner runs it (`node <file>`), inputs as INPUT_* variables. */
export function runActionFile(file: string, runner: Runner, inputs: Record<string, string>, extraEnv: Record<string, string>, node?: string): Promise<RunResult> {
  const env: Record<string, string> = { ...runner.env, ...extraEnv };
  // As the runner does: every input declared in action.yml, its default unless given.
  const values = { ...Object.fromEntries(Object.entries(actionYml().inputs).map(([k, d]) => [k, d.default ?? ''])), ...inputs };
  for (const [k, v] of Object.entries(values)) env[`INPUT_${k.replace(/ /g, '_').toUpperCase()}`] = v;
  return runNode([path.join(ROOT, file)], env, { cwd: runner.dir, ...(node ? { node } : {}) });
}

/** The action's main step (runs.main). */
export function runAction(runner: Runner, inputs: Record<string, string>, extraEnv: Record<string, string> = {}, node?: string): Promise<RunResult> {
  fs.writeFileSync(runner.env.GITHUB_STATE!, '');
  return runActionFile(actionYml().runs.main, runner, inputs, extraEnv, node);
}

/**
 * The action's post step (runs.post) at the job's end, as the runner runs it:
 * the same inputs, and what the main step saved as STATE_* variables. The
 * runner runs it when `post-if` holds; `always()` is the one condition these
 * tests model (whatever the outcome of the steps before).
 */
export function runActionPost(runner: Runner, inputs: Record<string, string>, extraEnv: Record<string, string> = {}): Promise<RunResult> {
  const { runs } = actionYml();
  if (!runs.post) throw new Error('action.yml has no post step');
  if (runs['post-if'] !== 'always()') throw new Error(`post-if ${String(runs['post-if'])}: only always() is modelled`);
  const state = Object.fromEntries(Object.entries(runner.githubState()).map(([k, v]) => [`STATE_${k}`, v]));
  return runActionFile(runs.post, runner, inputs, { ...state, ...extraEnv });
}

/**
 * The job log the runner would show before masking: every occurrence of
 * each secret must be inside an ::add-mask:: command, and every mask must
 * come before the first other occurrence. Returns the problems found.
 */
export function maskProblems(log: string, secrets: string[]): string[] {
  const problems: string[] = [];
  const lines = log.split('\n');
  for (const s of secrets) {
    const pieces = [s, ...(/\n/.test(s) ? s.split('\n').filter((l) => l.trim()) : [])];
    for (const piece of pieces) {
      const masked = lines.findIndex((l) => l === `::add-mask::${piece.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A')}`);
      if (masked < 0) problems.push(`never masked: ${JSON.stringify(piece.slice(0, 12))}...`);
      lines.forEach((l, i) => {
        if (l.startsWith('::add-mask::') || !l.includes(piece)) return;
        problems.push(i < masked ? `printed before it was masked, line ${i + 1}` : `printed in clear on line ${i + 1}`);
      });
    }
  }
  return problems;
}
