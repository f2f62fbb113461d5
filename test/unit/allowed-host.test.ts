import { allowedHostCheck } from '../../src/server/allowed-host';

describe('the Host a development server answers to (DNS-rebinding protection)', () => {
  const allowed = ['dev.internal'];
  const publicUrl = 'https://privacy.example';
  const isAllowedHost = allowedHostCheck(allowed, publicUrl);

  it.each([
    ['no Host at all (HTTP/1.0)', undefined],
    ['an IPv4 address with a port', '127.0.0.1:4000'],
    ['a network address (a rebinding needs a name)', '192.168.1.5:4000'],
    ['an IPv6 address', '[::1]:4000'],
    ['localhost, in any case', 'LocalHost:4000'],
    ['localhost written fully qualified', 'localhost.:4000'],
    ['a name under .localhost', 'app.localhost:4000'],
    ["PUBLIC_URL's name", 'privacy.example'],
    ['a configured name', 'dev.internal:4000'],
    ["PUBLIC_URL's name in another case, fully qualified", 'Privacy.Example.'],
  ])('answers %s', (_case, host) => {
    expect(isAllowedHost(host)).toBe(true);
  });

  it.each([
    ['a name that resolves here by rebinding', 'rebind.attacker.example:4000'],
    ['a name beginning with localhost', 'localhost.attacker.example'],
    ['a name beginning with an address', '127.0.0.1.attacker.example'],
    ['a name ending like a configured one', 'evil-dev.internal'],
    ['a Host that is no host', 'a b'],
  ])('refuses %s', (_case, host) => {
    expect(isAllowedHost(host)).toBe(false);
  });

  it('refuses every name but localhost without PUBLIC_URL or configured names', () => {
    expect(allowedHostCheck([], undefined)('privacy.example')).toBe(false);
  });
});
