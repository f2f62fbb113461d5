/**
 * The first key each object of a JSON array names twice, by the object's position in the array. JSON.parse
 * keeps the last of two same-named keys and drops the other without a word (`{"action": "withdraw", …,
 * "action": "grant"}` reads as a grant), and cannot say that it did. Only the array's own objects are
 * looked at: a value that is itself an object is no import row's (the row is refused for its type anyway).
 *
 * Reads text JSON.parse has accepted, so it only needs to tell strings from structure; a key is compared
 * as JSON.parse reads it (`"\u0061ction"` is `action`).
 */
export function repeatedKeys(text: string): Map<number, string> {
  const repeated = new Map<number, string>();
  // The containers open where the scan is, the array of rows first.
  const open: Array<'array' | 'object'> = [];
  let position = 0;
  let keys = new Set<string>();
  let expectingKey = false;
  for (let at = 0; at < text.length; at++) {
    const character = text[at];
    if (character === '"') {
      let end = at + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (expectingKey && open.length === 2) {
        const key = JSON.parse(text.slice(at, end + 1)) as string;
        if (keys.has(key) && !repeated.has(position)) repeated.set(position, key);
        keys.add(key);
      }
      expectingKey = false;
      at = end;
    } else if (character === '{' || character === '[') {
      open.push(character === '{' ? 'object' : 'array');
      expectingKey = character === '{';
      if (open.length === 2) keys = new Set();
    } else if (character === '}' || character === ']') {
      open.pop();
    } else if (character === ',') {
      if (open.length === 1) position++;
      expectingKey = open[open.length - 1] === 'object';
    }
  }
  return repeated;
}
