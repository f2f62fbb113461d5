import { loadConfig } from '../../src/config';
import { openServices } from '../../src/server/services';

export interface LoadResult {
  /** Responses the client received in full, with what their records must be. */
  readonly received: Array<{ requestId: string; status: number; expectedRecords: number; releasedData: boolean; code?: string }>;
  readonly failures: number;
}

/**
 * Sends governed queries from `concurrency` loops until `until()` says stop (bounded by `maxMs`). Each
 * query asks for two personal fields of a few customers, so a response carrying data must have exactly
 * two access records per customer returned.
 */
export async function governedLoad(urls: string[], options: { concurrency: number; maxMs: number; until?: (received: LoadResult['received']) => boolean }): Promise<LoadResult> {
  const received: LoadResult['received'] = [];
  let failures = 0;
  const deadline = Date.now() + options.maxMs;
  const loop = async (worker: number) => {
    for (let i = 0; Date.now() < deadline && !(options.until?.(received) ?? false); i++) {
      const url = urls[(worker + i) % urls.length];
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: 'Bearer demo-support-key', 'x-purpose': 'essential.service' },
          body: JSON.stringify({ query: `{ customers(limit: 4, offset: ${(worker * 7 + i) % 190}) { id email phone } }` }),
        });
        const body = (await response.json()) as { data?: { customers: Array<{ email: string | null; phone: string | null }> }; errors?: Array<{ extensions?: { code?: string } }> };
        const customers = body.data?.customers ?? [];
        received.push({
          requestId: response.headers.get('x-request-id')!,
          status: response.status,
          expectedRecords: customers.length * 2,
          releasedData: customers.some((customer) => customer.email !== null || customer.phone !== null),
          code: body.errors?.[0]?.extensions?.code,
        });
      } catch {
        failures++; // connection reset by a killed server, or refused while it restarts
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, (_, worker) => loop(worker)));
  return { received, failures };
}

/** Every response that carried governed data has all its records; returns how many were checked. */
export async function expectEveryReleaseRecorded(databaseUrl: string, load: LoadResult): Promise<number> {
  const services = await openServices(loadConfig({ DATABASE_URL: databaseUrl, NODE_ENV: 'test' }, {}));
  try {
    let checked = 0;
    for (const response of load.received) {
      if (response.status !== 200 || response.expectedRecords === 0) continue;
      const page = await services.accessLogReader.page({ requestId: response.requestId }, 10);
      expect([response.requestId, page.totalCount]).toEqual([response.requestId, response.expectedRecords]);
      checked++;
    }
    return checked;
  } finally {
    await services.close();
  }
}
