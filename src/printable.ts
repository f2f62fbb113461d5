/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE_SOURCE = '[\\ud800-\\udbff](?![\\udc00-\\udfff])|(?<![\\ud800-\\udbff])[\\udc00-\\udfff]';

/**
 * Characters text shown to a person may not hold: control characters but tab and newline (a terminal runs
 * them: `ESC ] 0;… BEL` retitles it, `ESC [ 2 J` clears it), the bidirectional overrides (they reorder
 * what a reader sees), and lone UTF-16 surrogates — no character at all: JSON.stringify escapes one
 * (`\ud83d`, what a digest covers) while a database stores U+FFFD in its place, so a record holding one
 * would never verify again.
 */
export const UNPRINTABLE = new RegExp(`[\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f\\u202a-\\u202e\\u2066-\\u2069]|${LONE_SURROGATE_SOURCE}`, 'g');

/** A UTF-16 surrogate without its pair (see UNPRINTABLE). */
export const LONE_SURROGATE = new RegExp(LONE_SURROGATE_SOURCE);

/** UNPRINTABLE without the global flag: `test` on a global expression keeps a position between calls. */
const ANY_UNPRINTABLE = new RegExp(UNPRINTABLE.source);

/** Whether `text` holds an UNPRINTABLE character. */
export function holdsUnprintable(text: string): boolean {
  return ANY_UNPRINTABLE.test(text);
}

/**
 * What a name or label may not hold although a database stores it: control characters (a line break or a tab
 * among them: it is shown in a line), format characters (`\p{Cf}`: the zero-width space, the soft hyphen,
 * bidirectional marks) and the other code points Unicode draws as nothing (variation selectors, the Hangul
 * fillers). Each lets a text show as another reads — `Team\u200b` as `Team` — while it groups, filters and
 * compares apart.
 */
const HIDDEN = /[\p{Cc}\p{Cf}\p{Default_Ignorable_Code_Point}]/u;

/** Whether `text` holds a character a person reading it cannot see (see HIDDEN), or an UNPRINTABLE one. */
export const holdsHidden = (text: string): boolean => HIDDEN.test(text) || holdsUnprintable(text);

/** `text` with each UNPRINTABLE character replaced by U+FFFD: safe to print to a terminal. */
export const inert = (text: string): string => text.replace(UNPRINTABLE, '\uFFFD');

/** `count` and its noun, in the plural but for one: `1 row`, `2 rows`. */
export const counted = (count: number, noun: string): string => `${count} ${noun}${count === 1 ? '' : 's'}`;
