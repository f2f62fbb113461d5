import { isIP } from 'node:net';

/**
 * Whether a development server answers a request's `Host` (DNS-rebinding protection, as webpack's and Vite's
 * dev servers have): a page on attacker.example that makes its name resolve to 127.0.0.1 reaches this
 * server from the victim's browser, but still sends `Host: attacker.example`. Answered: no Host (HTTP/1.0),
 * an IP address (a rebinding needs a name), `localhost` and `*.localhost` (they never leave the machine),
 * PUBLIC_URL's name and the names configured.
 */
export function isAllowedHost(hostHeader: string | undefined, allowedHosts: readonly string[], publicUrl: string | undefined): boolean {
  if (hostHeader === undefined || hostHeader === '') return true;
  let hostname: string;
  try {
    hostname = new URL(`http://${hostHeader}`).hostname.toLowerCase();
  } catch {
    return false;
  }
  const bare = hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  if (isIP(bare) !== 0 || bare === 'localhost' || bare.endsWith('.localhost')) return true;
  if (publicUrl !== undefined && new URL(publicUrl).hostname.toLowerCase() === bare) return true;
  return allowedHosts.includes(bare);
}
