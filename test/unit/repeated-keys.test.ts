import fc from 'fast-check';
import { repeatedKeys } from '../../src/consent/repeated-keys';

describe('the keys an import file names twice in one object', () => {
  it.each([
    ['none', '[{"action":"withdraw","purpose":"marketing"},{"action":"grant"}]', []],
    ['one repeated in the second object', '[{"action":"grant"},{"action":"withdraw","purpose":"marketing","action":"grant"}]', [[1, 'action']]],
    ['the first repeated of several', '[{"a":1,"b":2,"b":3,"a":4}]', [[0, 'b']]],
    ['in every object that repeats one', '[{"a":1,"a":1},{},{"c":null,"c":true}]', [[0, 'a'], [2, 'c']]],
    ['as JSON.parse reads a key: an escaped letter is the letter', '[{"action":"withdraw","\\u0061ction":"grant"}]', [[0, 'action']]],
    ['not a value that reads as a key, quotes and backslashes in strings', '[{"source":"\\"action\\":\\\\","action":"grant","note":"{\\"action\\":1}"}]', []],
    ['not the keys of a value that is itself an object, nor the objects of a nested array', '[{"source":{"a":1,"a":2},"list":[{"b":1,"b":2}],"action":"grant"},{"action":"x"}]', []],
    ['a key of the object again after a nested value', '[{"source":{"action":1},"action":"grant","list":["action"],"action":"withdraw"}]', [[0, 'action']]],
    ['with whitespace and line breaks anywhere', '[\n  { "a" : 1 ,\n    "a" : 2 } ,\n  5 , "x" , [ ] , { "a" : 1 }\n]', [[0, 'a']]],
  ])('finds %s', (_case, text, expected) => {
    JSON.parse(text); // the scan reads only text JSON.parse accepts
    expect([...repeatedKeys(text)]).toEqual(expected);
  });

  // Keys and strings holding what JSON escapes, and what a scan might take for structure.
  const word = fc.string({ unit: fc.constantFrom('a', 'b', '"', '\\', ':', ',', '{', '}', '[', ']', '\n', '\u2028', 'é', '\ud83d\ude00'), maxLength: 3 });
  const notAnObject = fc.oneof(word.map((text) => JSON.stringify(text)), fc.constantFrom('1', '-2.5e3', 'true', 'false', 'null'), fc.array(word, { maxLength: 3 }).map((texts) => JSON.stringify(texts)));
  // A value of a row may be an object, its keys repeated or not: not the row's keys.
  const value = fc.oneof(notAnObject, fc.array(fc.tuple(word, word), { maxLength: 3 }).map((entries) => `{${entries.map(([key, text]) => `${JSON.stringify(key)}:${JSON.stringify(text)}`).join(',')}}`));
  // A key as JSON.stringify writes it, or with each character escaped (\uXXXX): JSON.parse reads both alike.
  const written = (key: string, escaped: boolean) => (escaped ? `"${[...key].map((unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"` : JSON.stringify(key));
  const object = fc.array(fc.tuple(word, fc.boolean(), value), { maxLength: 5 });
  const space = fc.constantFrom('', ' ', '\n', '\t ');

  it('agrees with a reading of the objects it was given, whatever their keys and values (property-based)', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(object, notAnObject), { maxLength: 6 }), space, (elements, gap) => {
        const text = `[${elements
          .map((element) => (typeof element === 'string' ? element : `{${element.map(([key, escaped, item]) => `${gap}${written(key, escaped)}${gap}:${gap}${item}`).join(`,${gap}`)}}`))
          .join(`${gap},${gap}`)}]`;
        const expected: Array<[number, string]> = [];
        elements.forEach((element, position) => {
          if (typeof element === 'string') return;
          const keys = element.map(([key]) => key);
          const first = keys.find((key, index) => keys.indexOf(key) !== index);
          if (first !== undefined) expected.push([position, first]);
        });
        JSON.parse(text);
        expect([...repeatedKeys(text)]).toEqual(expected);
      }),
      { seed: 20261201, numRuns: 500 },
    );
  });
});
