import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tempDir } from './env.js';
import { until } from './wait.js';

/** A real rsyslogd of the test's own (never the system's daemon), writing every message it receives whole, one per line. */
export interface Receiver {
  dir: string;
  port: number;
  /** The file rsyslog writes: `%rawmsg%` per line. */
  out: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Lines written so far. */
  lines(): string[];
}

export interface ReceiverTls {
  caPem: string;
  certPem: string;
  keyPem: string;
}

async function freePort(protocol: 'tcp' | 'udp'): Promise<number> {
  if (protocol === 'udp') {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    const { port } = s.address();
    s.close();
    return port;
  }
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

/** Whether something listens on 127.0.0.1:port (read from /proc: no test connection reaches the receiver). */
function listening(protocol: 'tcp' | 'udp', port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return fs
    .readFileSync(`/proc/net/${protocol}`, 'utf8')
    .split('\n')
    .some((l) => {
      const [, local, , state] = l.trim().split(/\s+/);
      return local?.endsWith(hex) && (protocol === 'udp' || state === '0A');
    });
}

export async function startReceiver(protocol: 'tls' | 'tcp' | 'udp', tls?: ReceiverTls): Promise<Receiver> {
  const dir = tempDir('nexus-rsyslog');
  const port = await freePort(protocol === 'udp' ? 'udp' : 'tcp');
  const out = path.join(dir, 'received.log');
  const conf = path.join(dir, 'rsyslog.conf');
  const pidFile = path.join(dir, 'rsyslogd.pid');
  const global = [`workDirectory="${dir}"`, 'maxMessageSize="64k"'];
  let input: string;
  if (protocol === 'tls') {
    if (!tls) throw new Error('a TLS receiver needs its certificate');
    fs.writeFileSync(path.join(dir, 'ca.pem'), tls.caPem);
    fs.writeFileSync(path.join(dir, 'cert.pem'), tls.certPem);
    fs.writeFileSync(path.join(dir, 'key.pem'), tls.keyPem, { mode: 0o600 });
    global.push('DefaultNetstreamDriver="gtls"', `DefaultNetstreamDriverCAFile="${dir}/ca.pem"`, `DefaultNetstreamDriverCertFile="${dir}/cert.pem"`, `DefaultNetstreamDriverKeyFile="${dir}/key.pem"`);
    input = `module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")\ninput(type="imtcp" port="${port}" address="127.0.0.1")`;
  } else if (protocol === 'tcp') {
    input = `module(load="imtcp")\ninput(type="imtcp" port="${port}" address="127.0.0.1")`;
  } else {
    input = `module(load="imudp")\ninput(type="imudp" port="${port}" address="127.0.0.1")`;
  }
  fs.writeFileSync(
    conf,
    `global(${global.join(' ')})
${input}
template(name="whole" type="string" string="%rawmsg%\\n")
action(type="omfile" file="${out}" template="whole")
`,
  );
  let child: ChildProcess | null = null;
  let stderr = '';
  const receiver: Receiver = {
    dir,
    port,
    out,
    async start() {
      child = spawn('rsyslogd', ['-n', '-f', conf, '-i', pidFile], { stdio: ['ignore', 'pipe', 'pipe'] });
      let failed: Error | null = null;
      child.on('error', (err) => (failed = err));
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdout!.on('data', (d: Buffer) => (stderr += d.toString()));
      const c = child;
      await until(() => {
        if (failed) throw new Error(`cannot run rsyslogd (Debian: apt-get install rsyslog rsyslog-gnutls): ${(failed as Error).message}`);
        if (c.exitCode !== null) throw new Error(`rsyslogd exited (${c.exitCode}): ${stderr}`);
        return listening(protocol === 'udp' ? 'udp' : 'tcp', port);
      }, `rsyslogd listening on ${port}`, 15_000);
    },
    async stop() {
      const c = child;
      child = null;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
    },
    lines() {
      return fs.existsSync(out) ? fs.readFileSync(out, 'utf8').split('\n').filter(Boolean) : [];
    },
  };
  await receiver.start();
  return receiver;
}
