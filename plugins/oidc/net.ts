import net from 'node:net';

/** http:// is accepted only for issuers on loopback hosts (development, tests). */
export function isLoopbackUrl(u: URL): boolean {
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost') return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  return host === '::1';
}
