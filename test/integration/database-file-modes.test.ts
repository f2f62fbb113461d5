import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { openServices } from '../../src/server/services';
import { CLI, runShell } from '../support/child-server';

/** The permission bits of a path (CI runs as root, who may read anything: the bits are what is tested). */
const modeOf = (path: string) => statSync(path).mode & 0o777;

describe('the SQLite database files Candor creates', () => {
  let directory: string;

  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), 'candor-modes-'));
  });
  afterEach(() => {
    rmSync(directory, { recursive: true, force: true });
  });

  /** `npx candor migrate` as an operator runs it, under the usual umask 022. */
  const migrate = (databasePath: string) => runShell(`umask 022 && exec "${process.execPath}" "${CLI}" migrate`, { DATABASE_URL: `sqlite:${databasePath}`, NODE_ENV: 'test' });

  it('are readable by their owner only: the directories migrate creates 0700, the database 0600', async () => {
    const path = join(directory, 'data', 'candor', 'candor.sqlite');
    const migrated = await migrate(path);
    expect([migrated.code, migrated.stderr]).toEqual([0, '']);
    expect([modeOf(join(directory, 'data')), modeOf(join(directory, 'data', 'candor')), modeOf(path)]).toEqual([0o700, 0o700, 0o600]);
  });

  it('include the write-ahead log and shared memory, which SQLite creates with the database file’s mode', async () => {
    const path = join(directory, 'candor.sqlite');
    const umask = process.umask(0o022);
    try {
      const services = await openServices(loadConfig({ DATABASE_URL: `sqlite:${path}`, NODE_ENV: 'test' }, {}));
      try {
        // The access log's worker opens its own connection on the first append.
        await services.accessLog.append([{ at: new Date(), requestId: 'modes', actor: null, purpose: null, operationName: null, subjectId: null, coordinate: null, category: null, decision: 'REFUSED', reason: 'UNAUTHENTICATED', legalBasis: null }]);
        expect([modeOf(path), modeOf(`${path}-wal`), modeOf(`${path}-shm`)]).toEqual([0o600, 0o600, 0o600]);
      } finally {
        await services.close();
      }
    } finally {
      process.umask(umask);
    }
  });

  it('leave a database file and directory the operator made as they are', async () => {
    const made = join(directory, 'shared');
    mkdirSync(made);
    chmodSync(made, 0o750);
    const path = join(made, 'candor.sqlite');
    writeFileSync(path, '');
    chmodSync(path, 0o640);
    const migrated = await migrate(path);
    expect([migrated.code, migrated.stderr]).toEqual([0, '']);
    expect([modeOf(made), modeOf(path)]).toEqual([0o750, 0o640]);
  });
});
