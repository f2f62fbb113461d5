/**
 * Characters text shown to a person may not hold: control characters but tab and newline (a terminal runs
 * them: `ESC ] 0;… BEL` retitles it, `ESC [ 2 J` clears it) and the bidirectional overrides (they reorder
 * what a reader sees).
 */
export const UNPRINTABLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/** Whether `text` holds an UNPRINTABLE character (a fresh expression: the global one keeps a position between tests). */
export function holdsUnprintable(text: string): boolean {
  return new RegExp(UNPRINTABLE.source).test(text);
}

/** `text` with each UNPRINTABLE character replaced by U+FFFD: safe to print to a terminal. */
export const inert = (text: string): string => text.replace(UNPRINTABLE, '\uFFFD');
