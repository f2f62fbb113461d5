import { writeCheckpoint } from '../audit/checkpoints';
import type { CandorServices } from './services';

/**
 * Signs a checkpoint of the access-log head every `intervalSeconds` when the head has moved, so an
 * exported checkpoint pins the chain and any later rewrite of history is detectable.
 */
export function startCheckpointTimer(services: CandorServices, intervalSeconds: number): { stop(): Promise<void> } {
  let lastSeq = -1;
  // One tick at a time: a slow store must not make two ticks sign the same head twice.
  let running: Promise<void> | undefined;
  const tick = () =>
    (running ??= (async () => {
      try {
        const head = await services.accessLogReader.headSeq();
        if (head === lastSeq || head === 0) return;
        await writeCheckpoint(services.dataSource, services.checkpointSigner, 'periodic', services.clock());
        lastSeq = head;
      } catch (error) {
        // A missed checkpoint is retried at the next tick; it never affects requests, but operators must know.
        services.logger.warn({ error: (error as Error).message }, 'could not sign a periodic access-log checkpoint; retrying at the next tick');
      } finally {
        running = undefined;
      }
    })());
  const timer = intervalSeconds > 0 ? setInterval(() => void tick(), intervalSeconds * 1000) : undefined;
  timer?.unref();
  return {
    stop: async () => {
      if (timer) clearInterval(timer);
      // The last checkpoint covers the head at shutdown: after a tick that may have read it earlier.
      await running;
      await tick();
    },
  };
}
