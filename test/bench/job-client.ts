// What a CI job does on the wire, as its own short-lived client: one fresh
// TLS connection (a new agent per job), reused for the job's few requests,
// closed at the end. Non-2xx answers reject with a JobError (counted by status).
import https from 'node:https';
import { JobError } from './open-loop.js';

export interface JobConnection {
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<string>;
  close(): void;
}

export function jobConnection(port: number, ca: Buffer): JobConnection {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  return {
    request: (method, path, body, headers = {}) =>
      new Promise((resolve, reject) => {
        const text = body === undefined ? undefined : JSON.stringify(body);
        const h: Record<string, string> = { ...headers };
        if (text !== undefined) Object.assign(h, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
        const req = https.request({ host: '127.0.0.1', port, method, path, ca, agent, headers: h }, (res) => {
          let t = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (t += c));
          res.on('end', () => (res.statusCode! >= 200 && res.statusCode! < 300 ? resolve(t) : reject(new JobError(res.statusCode!, t))));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(text);
      }),
    close: () => agent.destroy(),
  };
}
