/**
 * Rejects when `work` takes longer than `ms`: a slow store counts as an unavailable one. Every store read of
 * the request path (the actor, the rate limit, consent, a refusal's record) and every readiness check is
 * bounded by it (`CANDOR_STORE_DEADLINE_MS`).
 */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
