// The proxy a self-hosted runner's job reaches GitHub through (https_proxy,
// http_proxy, no_proxy), for the ID-token request: what @actions/http-client
// did for core.getIDToken, with the same choice of proxy and the same
// bypass rules, as a CONNECT tunnel over Node's own http/https.
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';

function loopback(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h.startsWith('127.') || h.startsWith('[::1]') || h.startsWith('[0:0:0:0:0:0:0:1]');
}

/** no_proxy (NO_PROXY): `*`, a host, `host:port`, or a domain (`example.com`, `.example.com`) that the host ends in; loopback always. */
function bypassed(url: URL): boolean {
  if (!url.hostname) return false;
  if (loopback(url.hostname)) return true;
  const noProxy = process.env.no_proxy || process.env.NO_PROXY || '';
  if (!noProxy) return false;
  const host = url.hostname.toUpperCase();
  const hosts = [host, `${host}:${url.port || (url.protocol === 'http:' ? 80 : 443)}`];
  return noProxy
    .split(',')
    .map((x) => x.trim().toUpperCase())
    .filter(Boolean)
    .some((item) => item === '*' || hosts.some((h) => h === item || h.endsWith(`.${item}`) || (item.startsWith('.') && h.endsWith(item))));
}

/** The proxy for `url`, if the environment names one and no_proxy does not exempt the host. */
export function proxyFor(url: URL): URL | undefined {
  if (bypassed(url)) return undefined;
  const raw = url.protocol === 'https:' ? process.env.https_proxy || process.env.HTTPS_PROXY : process.env.http_proxy || process.env.HTTP_PROXY;
  if (!raw) return undefined;
  try {
    return new URL(raw);
  } catch {
    return new URL(`http://${raw}`);
  }
}

/** A socket to `url`'s host and port through `proxy` (CONNECT; Basic credentials from the proxy URL, if any). */
export function tunnel(proxy: URL, url: URL): Promise<Socket> {
  const target = `${url.hostname}:${url.port || (url.protocol === 'http:' ? 80 : 443)}`;
  const auth = proxy.username || proxy.password ? { 'proxy-authorization': `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}` } : {};
  return new Promise((resolve, reject) => {
    const req = (proxy.protocol === 'https:' ? https : http).request({ hostname: proxy.hostname, port: proxy.port || (proxy.protocol === 'https:' ? 443 : 80), method: 'CONNECT', path: target, headers: { host: target, ...auth }, agent: false, timeout: 30_000 });
    req.on('connect', (res, socket) => {
      if (res.statusCode === 200) return resolve(socket);
      socket.destroy();
      reject(new Error(`the proxy ${proxy.origin} refused CONNECT ${target} (HTTP ${res.statusCode})`));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from the proxy ${proxy.origin} within 30 s`)));
    req.on('error', reject);
    req.end();
  });
}
