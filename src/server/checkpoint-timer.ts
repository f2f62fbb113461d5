import { writeCheckpoint } from '../audit/checkpoints';
import type { CandorServices } from './services';

/**
 * Signs a checkpoint of the access-log head every `intervalSeconds` when the head has moved, so an
 * exported checkpoint pins the chain and any later rewrite of history is detectable.
 */
export function startCheckpointTimer(services: CandorServices, intervalSeconds: number): { stop(): Promise<void> } {
  let lastSeq = -1;
  const tick = async () => {
    try {
      const head = await services.accessLogReader.headSeq();
      if (head === lastSeq || head === 0) return;
      await writeCheckpoint(services.dataSource, services.checkpointSigner, 'periodic', services.clock());
      lastSeq = head;
    } catch {
      // A missed checkpoint is retried at the next tick; it never affects requests.
    }
  };
  const timer = intervalSeconds > 0 ? setInterval(() => void tick(), intervalSeconds * 1000) : undefined;
  timer?.unref();
  return {
    stop: async () => {
      if (timer) clearInterval(timer);
      await tick();
    },
  };
}
