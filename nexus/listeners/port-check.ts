import net from 'node:net';
import type { Config, ListenAddr } from '../config/index.js';
import { SETTINGS } from '../config/settings.js';
import { ConfigError } from '../errors.js';

const WHY: Record<string, string> = {
  EADDRINUSE: 'is already in use (another Nexus or another service); choose a free host:port',
  EADDRNOTAVAIL: 'is not an address of this host',
  EACCES: 'may not be bound by this user (a port below 1024 needs privileges)',
};

/** Binds and releases `addr` at once; a refusal is a ConfigError naming `variable`. */
async function probe(variable: string, addr: ListenAddr): Promise<void> {
  const server = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: addr.host, port: addr.port, exclusive: true }, resolve);
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    throw new ConfigError(variable, `${addr.host}:${addr.port} ${WHY[code] ?? `cannot be bound (${code || (err as Error).message})`}`);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
}

/**
 * Every fixed port this configuration listens on is free now. Run before the
 * data dir, the root key or the dev PKI are created, so a busy port costs a
 * one-line error naming its variable and leaves nothing behind. (A port taken
 * between this check and the real bind still fails start-up, less kindly.)
 */
export async function checkPortsFree(config: Pick<Config, 'mtlsAddr' | 'oidcAddr'>): Promise<void> {
  const wanted: Array<[string, ListenAddr | null]> = [
    [SETTINGS.mtlsAddr.env, config.mtlsAddr],
    [SETTINGS.oidcAddr.env, config.oidcAddr],
  ];
  for (const [variable, addr] of wanted) if (addr && addr.port !== 0) await probe(variable, addr);
}
