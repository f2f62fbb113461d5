import { AccessLog, LogBackedUpError, type PipelinedAuditStore } from '../../src/audit/access-log';
import { type AppendEntry, type AppendResult, entryRow, pseudonymise } from '../../src/audit/audit-store';
import { batchHashOfBytes, EMPTY_HEAD, type EntryItem, GENESIS_HASH, HEADER_FIELDS, ITEM_FIELDS, sealBatch, type UnsealedEntry } from '../../src/audit/chain';
import { packEntries, type PackedEntries } from '../../src/audit/packed-entries';
import { sealRun } from '../../src/audit/postgres-seal-worker';

const header = { at: '2026-11-29T03:01:17.123Z', requestId: 'r-1', actorId: 'a', actorName: 'Ann "the auditor"\t\\ of\nteam', actorTeam: 'T', purpose: 'essential.service', operationName: null };
const items: EntryItem[] = [
  { coordinate: 'Customer.email', category: 'user.contact.email', decision: 'RELEASED', reason: 'LEGAL_BASIS', legalBasis: 'contract', consentReceiptId: null },
  { coordinate: 'Customer.phone', category: 'user.contact.phone_number', decision: 'WITHHELD', reason: 'OBJECTED', legalBasis: 'legitimate_interests', consentReceiptId: 'rcpt\t1' },
  { coordinate: 'Customer.email', category: 'user.contact.email', decision: 'MASKED', reason: 'LEGAL_BASIS', legalBasis: 'legitimate_interests', consentReceiptId: null, maskStrategy: 'partial_email' },
];
const entries: AppendEntry[] = [
  { ...header, subjectId: 'cus_a', items },
  { ...header, subjectId: null, items: [{ coordinate: null, category: null, decision: 'REFUSED', reason: 'UNAUTHENTICATED', legalBasis: null, consentReceiptId: null }] },
  { ...header, requestId: 'r-2', actorId: null, actorName: null, actorTeam: null, subjectId: 'cus_b', items: [items[1], items[0]] },
];
const pseudonyms = new Map([
  ['cus_a', 'psn_aaaaaaaaaaaaaaaaaaaaaaaa'],
  ['cus_b', 'psn_bbbbbbbbbbbbbbbbbbbbbbbb'],
]);

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

/** COPY text back to rows of strings (null for \N), undoing the escapes. */
const copyRows = (pieces: readonly Uint8Array[]) =>
  new TextDecoder()
    .decode(Buffer.concat(pieces))
    .split('\n')
    .slice(0, -1)
    .map((line) => line.split('\t').map((field) => (field === '\\N' ? null : field.replace(/\\(.)/g, (_, escaped: string) => ({ t: '\t', n: '\n', r: '\r' })[escaped] ?? escaped))));

/** Reads packed entries back into entries (the worker reads the codes directly; this checks nothing was lost). */
function unpackEntries({ values, codes }: PackedEntries): UnsealedEntry[] {
  const entries: UnsealedEntry[] = [];
  let at = 0;
  while (at < codes.length) {
    const entry: Record<string, unknown> = {};
    for (const field of HEADER_FIELDS) entry[field] = values[codes[at++]];
    const items: Record<string, unknown>[] = new Array(codes[at++]);
    for (let index = 0; index < items.length; index++) {
      const item: Record<string, unknown> = {};
      for (const field of ITEM_FIELDS) {
        // An optional field that was absent stays absent.
        const value = values[codes[at++]];
        if (value !== undefined) item[field] = value;
      }
      items[index] = item;
    }
    entry.items = items;
    entries.push(entry as unknown as UnsealedEntry);
  }
  return entries;
}

describe('sealing PostgreSQL batches off the main thread', () => {
  it('packs entries for the worker and unpacks them exactly as the chain would seal them', () => {
    expect(unpackEntries(packEntries(entries, pseudonyms))).toStrictEqual(pseudonymise(entries, pseudonyms));
    expect(() => packEntries(entries, new Map())).toThrow('no pseudonym for subject cus_a');
  });

  it('seals a batch in runs (as parallel workers do) to exactly the rows and hash of sealing it whole', () => {
    const head = { batchId: 4, lastSeq: 41, hash: 'ab'.repeat(32) };
    const whole = sealBatch(head, pseudonymise(entries, pseudonyms), 'now');
    const first = sealRun(5, 42, packEntries(entries.slice(0, 1), pseudonyms), 'now');
    const second = sealRun(5, 42 + items.length, packEntries(entries.slice(1), pseudonyms), 'now');
    expect(batchHashOfBytes(head.hash, [first.digests, second.digests])).toBe(whole.hash);
    expect(copyRows([...first.rows, ...second.rows])).toEqual(whole.entries.map((entry) => entryRow(entry, 5, 'now').map((value) => (value === null ? null : String(value)))));
    expect(hex(first.digests) + hex(second.digests)).toBe(whole.entries.flatMap((entry) => entry.digests).join(''));
  });

  it('seals rows of multi-byte characters, and a row longer than a piece, byte for byte', () => {
    const wide = Array.from({ length: 600 }, (_, index) => ({ ...entries[0], requestId: `r-${index}`, actorName: '€'.repeat(200) }));
    const huge = [{ ...entries[0], actorName: '€'.repeat(100_000) }];
    for (const batch of [wide, huge]) {
      const whole = sealBatch(EMPTY_HEAD, pseudonymise(batch, pseudonyms), 'now');
      const run = sealRun(1, 1, packEntries(batch, pseudonyms), 'now');
      expect(copyRows(run.rows)).toEqual(whole.entries.map((entry) => entryRow(entry, 1, 'now').map((value) => (value === null ? null : String(value)))));
    }
  });

  it('seals a long run into several pieces of COPY text, to the same rows and digests', () => {
    const many = Array.from({ length: 2_500 }, (_, index) => ({ ...entries[index % entries.length], requestId: `r-${index}` })) // 5,000 records;
    const whole = sealBatch(EMPTY_HEAD, pseudonymise(many, pseudonyms), 'now');
    const run = sealRun(1, 1, packEntries(many, pseudonyms), 'now');
    expect(run.rows.length).toBeGreaterThan(1);
    expect(hex(run.digests)).toBe(whole.entries.flatMap((entry) => entry.digests).join(''));
    expect(batchHashOfBytes(GENESIS_HASH, [run.digests])).toBe(whole.hash);
    expect(copyRows(run.rows)).toEqual(whole.entries.map((entry) => entryRow(entry, 1, 'now').map((value) => (value === null ? null : String(value)))));
  });
});

/** A promise with its settlers, so the test decides when a store's step finishes. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** A pipelined store whose every prepare and commit waits for the test, recording the order of steps. */
class ScriptedStore implements PipelinedAuditStore<number> {
  readonly steps: string[] = [];
  readonly prepares: Array<ReturnType<typeof deferred<void>>> = [];
  readonly commits: Array<ReturnType<typeof deferred<void>>> = [];
  private batches = 0;

  constructor(readonly commitsInFlight = 1) {}

  async prepare(entries: readonly AppendEntry[]): Promise<number> {
    const batch = ++this.batches;
    this.steps.push(`prepare ${batch}: ${entries.map((entry) => entry.requestId).join(',')}`);
    const step = deferred<void>();
    this.prepares[batch] = step;
    await step.promise;
    return batch;
  }

  async commit(batch: number): Promise<AppendResult> {
    this.steps.push(`commit ${batch}`);
    const step = deferred<void>();
    this.commits[batch] = step;
    await step.promise;
    return { batchId: batch, firstSeq: batch, lastSeq: batch, hash: String(batch) };
  }

  append(): Promise<AppendResult> {
    throw new Error('the access log must use prepare and commit');
  }
  async prune() {
    return undefined;
  }
  async forget() {}
  async ping() {}
  async close() {}
}

const entry = (requestId: string): AppendEntry => ({ ...header, requestId, subjectId: null, items: [items[0]] });
const settled = async (promise: Promise<unknown>) => {
  let state = 'pending';
  promise.then(
    () => (state = 'resolved'),
    () => (state = 'rejected'),
  );
  for (let tick = 0; tick < 10; tick++) await new Promise((resolve) => setImmediate(resolve));
  return state;
};
const until = async (condition: () => boolean) => {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
};

/** Lets batch `batch`'s sealing finish once it started, and waits until its commit starts. */
const sealThenCommit = async (store: ScriptedStore, batch: number) => {
  await until(() => store.prepares[batch] !== undefined);
  store.prepares[batch].resolve();
  await until(() => store.commits[batch] !== undefined);
};

describe('the access log on a pipelined store', () => {
  it('seals the next group while the previous one commits, and commits in order, one at a time', async () => {
    const store = new ScriptedStore();
    const log = new AccessLog(store);
    const first = log.appendEntries([entry('a')]);
    await until(() => store.prepares[1] !== undefined);
    const second = log.appendEntries([entry('b')]);
    const third = log.appendEntries([entry('c')]);
    store.prepares[1].resolve();
    // b and c arrived while a was sealed: they form the next group, sealed while a commits.
    await until(() => store.prepares[2] !== undefined);
    expect(store.steps).toEqual(['prepare 1: a', 'commit 1', 'prepare 2: b,c']);
    store.prepares[2].resolve();
    expect(await settled(second)).toBe('pending');
    expect(store.steps).toEqual(['prepare 1: a', 'commit 1', 'prepare 2: b,c']); // batch 2 waits for batch 1's commit
    expect(await settled(first)).toBe('pending'); // resolved only by its commit
    store.commits[1].resolve();
    expect(await first).toEqual(expect.objectContaining({ batchId: 1 }));
    await until(() => store.commits[2] !== undefined);
    // A request that arrives while batch 2 commits is sealed meanwhile.
    const fourth = log.appendEntries([entry('d')]);
    await until(() => store.prepares[3] !== undefined);
    expect(store.steps.slice(3)).toEqual(['commit 2', 'prepare 3: d']);
    store.commits[2].resolve();
    expect([await second, await third]).toEqual([expect.objectContaining({ batchId: 2 }), expect.objectContaining({ batchId: 2 })]);
    store.prepares[3].resolve();
    await until(() => store.commits[3] !== undefined);
    store.commits[3].resolve();
    expect(await fourth).toEqual(expect.objectContaining({ batchId: 3 }));
  });

  it('refuses records at once, rather than queue them without bound, while its store does not answer', async () => {
    const store = new ScriptedStore();
    const log = new AccessLog(store, undefined, { maxQueuedRecords: 2 });
    // a is being sealed (the store does not answer); b and c wait; d would be a third waiting record.
    const first = log.appendEntries([entry('a')]);
    await until(() => store.prepares[1] !== undefined);
    const waiting = [log.appendEntries([entry('b')]), log.appendEntries([entry('c')])];
    await expect(log.appendEntries([entry('d')])).rejects.toThrow(new LogBackedUpError(2));
    // Once the store answers, the queue drains (b and c are sealed as batch 2) and records are taken again.
    store.prepares[1].resolve();
    await until(() => store.prepares[2] !== undefined);
    const later = log.appendEntries([entry('e')]);
    for (const batch of [1, 2, 3]) {
      await until(() => store.prepares[batch] !== undefined);
      store.prepares[batch].resolve();
      await until(() => store.commits[batch] !== undefined);
      store.commits[batch].resolve();
    }
    expect(await Promise.all([first, ...waiting, later])).toEqual([1, 2, 2, 3].map((batchId) => expect.objectContaining({ batchId })));
  });

  it('overlaps as many commits as the store allows, started in order, and starts another when any ends', async () => {
    const store = new ScriptedStore(2);
    const log = new AccessLog(store);
    const first = log.appendEntries([entry('a')]);
    await sealThenCommit(store, 1);
    const second = log.appendEntries([entry('b')]);
    await sealThenCommit(store, 2); // batch 2 commits while batch 1 still does
    const third = log.appendEntries([entry('c')]);
    await until(() => store.prepares[3] !== undefined);
    store.prepares[3].resolve();
    expect(await settled(third)).toBe('pending');
    expect(store.steps).toEqual(['prepare 1: a', 'commit 1', 'prepare 2: b', 'commit 2', 'prepare 3: c']); // two in flight: batch 3 waits
    store.commits[2].resolve();
    expect(await second).toEqual(expect.objectContaining({ batchId: 2 }));
    await until(() => store.commits[3] !== undefined); // batch 2's slot, while batch 1 still commits
    expect(await settled(first)).toBe('pending');
    store.commits[1].resolve();
    expect(await first).toEqual(expect.objectContaining({ batchId: 1 }));
    store.commits[3].resolve();
    expect(await third).toEqual(expect.objectContaining({ batchId: 3 }));
  });

  it('fails only the group whose sealing or commit failed', async () => {
    const store = new ScriptedStore();
    const log = new AccessLog(store);
    const first = log.appendEntries([entry('a')]);
    await until(() => store.prepares[1] !== undefined);
    const second = log.appendEntries([entry('b')]);
    store.prepares[1].reject(new Error('access log sealing failed: worker exited (1)'));
    await expect(first).rejects.toThrow('worker exited');
    await sealThenCommit(store, 2);
    const third = log.appendEntries([entry('c')]);
    await until(() => store.prepares[3] !== undefined);
    store.prepares[3].resolve();
    store.commits[2].reject(new Error('connection terminated'));
    await expect(second).rejects.toThrow('connection terminated');
    await until(() => store.commits[3] !== undefined);
    store.commits[3].resolve();
    expect(await third).toEqual(expect.objectContaining({ batchId: 3 }));
  });
});
