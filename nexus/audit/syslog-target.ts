/** Where audit records are forwarded: NEXUS_AUDIT_SYSLOG, parsed. */
export interface SyslogTarget {
  protocol: 'tls' | 'tcp' | 'udp';
  host: string;
  port: number;
  /** The URL as configured, normalised (`tls://host:6514`): it names the receiver in the forwarder's position file. */
  url: string;
}

const DEFAULT_PORT = { tls: 6514, tcp: 514, udp: 514 } as const;

/** `tls://host:port`, `tcp://host:port` or `udp://host:port` (port defaults 6514, 514, 514); a string says what is wrong. */
export function parseSyslogTarget(raw: string): SyslogTarget | { invalid: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { invalid: `expected tls://host:port, tcp://host:port or udp://host:port, got ${JSON.stringify(raw)}` };
  }
  const protocol = url.protocol.slice(0, -1);
  if (protocol !== 'tls' && protocol !== 'tcp' && protocol !== 'udp') return { invalid: `the scheme must be tls, tcp or udp, got ${JSON.stringify(url.protocol)}` };
  if (!url.hostname) return { invalid: `no host in ${JSON.stringify(raw)}` };
  if (url.username || url.password) return { invalid: 'a syslog URL takes no credentials' };
  if ((url.pathname !== '' && url.pathname !== '/') || url.search || url.hash) return { invalid: `expected ${protocol}://host:port and nothing after it, got ${JSON.stringify(raw)}` };
  const port = url.port ? Number(url.port) : DEFAULT_PORT[protocol];
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return { protocol, host, port, url: `${protocol}://${url.host}${url.port ? '' : `:${port}`}` };
}
