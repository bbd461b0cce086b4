import type { IncomingHttpHeaders } from 'node:http';
import https from 'node:https';

/** An answer, whatever its status, with its body as text: the caller decides what it means. */
export interface TextReply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/**
 * One HTTPS request (Pilot, the CI clients and the tests all send theirs
 * through here). `url` when the caller has one, else `options` carry host,
 * port and the raw path. Network and TLS errors reject as Node raised them,
 * and a `timeout` rejects with the caller's own error, for the caller to word.
 */
export function httpsText(url: URL | null, options: https.RequestOptions, body?: Buffer | string, timeout?: { ms: number; error: () => Error }): Promise<TextReply> {
  return new Promise((resolve, reject) => {
    const onResponse = (res: import('node:http').IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    };
    const opts = timeout ? { ...options, timeout: timeout.ms } : options;
    const req = url ? https.request(url, opts, onResponse) : https.request(opts, onResponse);
    if (timeout) req.on('timeout', () => req.destroy(timeout.error()));
    req.on('error', reject);
    req.end(body);
  });
}
