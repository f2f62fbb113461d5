import { writeCheckpoint } from '../audit/checkpoints';
import type { CandorServices } from './services';

/**
 * Signs a checkpoint of the access-log head every `intervalSeconds` when the head has moved, so an
 * exported checkpoint pins the chain and any later rewrite of history is detectable.
 */
export function startCheckpointTimer(services: CandorServices, intervalSeconds: number): { stop(): Promise<void> } {
  let lastSeq = -1;
  const sign = async () => {
    const head = await services.accessLogReader.headSeq();
    if (head === lastSeq || head === 0) return;
    await writeCheckpoint(services.dataSource, services.checkpointSigner, 'periodic', services.clock());
    lastSeq = head;
  };
  // One tick at a time: a slow store must not make two ticks sign the same head twice.
  let running: Promise<void> | undefined;
  const tick = () =>
    (running ??= sign()
      // A missed checkpoint is retried at the next tick; it never affects requests, but operators must know.
      .catch((error: Error) => services.logger.warn({ error: error.message }, 'could not sign a periodic access-log checkpoint; retrying at the next tick'))
      .finally(() => (running = undefined)));
  const timer = intervalSeconds > 0 ? setInterval(() => void tick(), intervalSeconds * 1000) : undefined;
  timer?.unref();
  return {
    /** Signs the last checkpoint, covering the head at shutdown (after a tick that may have read it earlier); rejects when it cannot. */
    stop: async () => {
      if (timer) clearInterval(timer);
      await running;
      try {
        await sign();
      } catch (error) {
        // No next tick: the head stays uncovered until a checkpoint is signed by hand.
        throw new Error(`could not sign the final access-log checkpoint (${(error as Error).message}): sign one with \`npx candor audit checkpoint create\` once the store answers`);
      }
    },
  };
}
