import { createMasker, MASK_STRATEGIES, type MaskStrategy } from '../../src/policy/masking';

const mask = createMasker(Buffer.alloc(32, 1));

describe('masking strategies reveal no more than they say', () => {
  it.each([
    ['partial_email', 'jane.doe@example.com', 'j***@example.com'],
    ['partial_email', 'abc@x.io', 'a***@x.io'],
    ['partial_email', 'ab@x.io', '***@x.io'], // two characters: showing one would show half
    ['partial_email', 'a@x.io', '***@x.io'],
    ['partial_email', '@x.io', '***@x.io'],
    ['partial_email', 'no-at-sign', '***'],
    ['partial_email', 'trailing@', '***'],
    ['partial_email', '', '***'],
    ['partial_email', 'örjan@exämple.se', 'ö***@exämple.se'],
    ['partial_email', '😀😀😀@x.io', '😀***@x.io'], // one code point, never half a surrogate pair
    ['partial_email', '😀a@x.io', '***@x.io'], // two characters, though three UTF-16 units
    ['partial_email', 'call me @ +49 170 1234567', '***'], // what follows "@" is no domain: not shown
    ['partial_email', 'jane <jane@x.com> tel 0170-1234567', '***'],
    ['partial_email', 'jane@localhost', '***'],
    ['partial_email', 'x@0170.123.4567', '***'], // a dotted phone number is no domain
    ['partial_email', 'x@192.168.1.1', '***'],
    ['partial_email', 'ravi@उदाहरण.परीक्षा', 'r***@उदाहरण.परीक्षा'], // labels ending in a combining mark
    ['partial_email', 'som@ตัวอย่าง.ไทย', 's***@ตัวอย่าง.ไทย'],
    ['partial_email', 'ann@my-shop.co.uk', 'a***@my-shop.co.uk'],
    ['partial_email', 'reach me at jane@example.com', '***'], // a sentence around an address: nothing of it shown
    ['partial_email', 'jane@home@example.com', 'j***@example.com'], // the domain is what follows the last "@"
    ['year', '1990-04-01', '1990'],
    ['year', '1990-04-01T10:00:00Z', '1990'],
    ['year', '1990', null], // not a date: nothing rather than a guess
    ['year', '', null],
    ['year', '01/04/1990', null],
    ['year', '1990-13-45', null], // no such day
    ['year', '1234-56-7890', null],
    ['year', '1990-02-30', null],
    ['year', '1992-02-29', '1992'],
    ['year', '0099-01-01', '0099'],
    ['year', '1990-04-01 (approx.)', null],
    ['city', '52.520008,13.404954', '52.5,13.4'],
    ['city', ' -33.8688 , 151.2093 ', '-33.9,151.2'],
    ['city', '91.0,0', null],
    ['city', '-0.04,-0.03', '0.0,0.0'], // no sign left for a position the rounding puts on the line
    ['city', '-0.06,0.04', '-0.1,0.0'],
    ['city', 'Berlin', null],
    ['city', '90,-180', '90.0,-180.0'], // the pole and the antimeridian are positions
    ['city', 'near 52.520008,13.404954', null],
    ['city', '', null],
  ] as Array<[MaskStrategy, string, string | null]>)('%s(%j) → %j', (strategy, value, expected) => {
    expect(mask(strategy, value)).toBe(expected);
  });

  it('keyed_hash: equal values hash equally, others differently, under this key only, and show no part of the value', () => {
    const first = mask('keyed_hash', '+49 30 1234567') as string;
    expect(first).toMatch(/^kh_[0-9a-f]{16}$/);
    expect(mask('keyed_hash', '+49 30 1234567')).toBe(first);
    expect(mask('keyed_hash', '+49 30 1234568')).not.toBe(first);
    expect(createMasker(Buffer.alloc(32, 2))('keyed_hash', '+49 30 1234567')).not.toBe(first);
    expect(mask('keyed_hash', '')).toMatch(/^kh_[0-9a-f]{16}$/);
    expect(first).not.toContain('1234567');
  });

  it('null stays null and lists are masked element by element, for every strategy', () => {
    for (const strategy of Object.keys(MASK_STRATEGIES) as MaskStrategy[]) {
      expect(mask(strategy, null)).toBeNull();
      expect(mask(strategy, undefined)).toBeNull();
      expect(mask(strategy, ['1990-01-01', 'x@y.z'])).toEqual([mask(strategy, '1990-01-01'), mask(strategy, 'x@y.z')]);
    }
  });
});
