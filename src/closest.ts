/** Levenshtein distance: the fewest insertions, deletions and substitutions that turn `a` into `b`. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length];
}

/** The candidate fewest edits from `name`, when one is at most `maxEdits` away (the first of equals). */
export function closest<T extends string>(name: string, candidates: Iterable<T>, maxEdits: number, comparable: (candidate: T) => string = (candidate) => candidate): T | undefined {
  let best: { candidate: T; edits: number } | undefined;
  for (const candidate of candidates) {
    const edits = editDistance(name, comparable(candidate));
    if (edits <= maxEdits && (best === undefined || edits < best.edits)) best = { candidate, edits };
  }
  return best?.candidate;
}
