import { isIP } from 'node:net';

/** A URL's hostname as compared: lower case, IPv6 without brackets, no trailing dot of a fully qualified name. */
const bareHostname = (hostname: string) => hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');

/**
 * Which `Host` a development server answers (DNS-rebinding protection, as webpack's and Vite's dev servers
 * have): a page on attacker.example that makes its name resolve to 127.0.0.1 reaches this server from the
 * victim's browser, but still sends `Host: attacker.example`. Answered: no Host (HTTP/1.0), an IP address (a
 * rebinding needs a name), `localhost` and `*.localhost` (they never leave the machine), PUBLIC_URL's name
 * and the names configured. Built once at start: the check runs on every request.
 */
export function allowedHostCheck(allowedHosts: readonly string[], publicUrl: string | undefined): (hostHeader: string | undefined) => boolean {
  const names = new Set(allowedHosts.map(bareHostname));
  if (publicUrl !== undefined) names.add(bareHostname(new URL(publicUrl).hostname));
  return (hostHeader) => {
    if (hostHeader === undefined || hostHeader === '') return true;
    let hostname: string;
    try {
      hostname = new URL(`http://${hostHeader}`).hostname;
    } catch {
      return false;
    }
    const bare = bareHostname(hostname);
    return isIP(bare) !== 0 || bare === 'localhost' || bare.endsWith('.localhost') || names.has(bare);
  };
}
