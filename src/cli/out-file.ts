import { lstatSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import type { DatabaseConfig } from '../config';
import { badInput } from '../errors';

/** The files SQLite keeps a database in: the file itself, and the ones it makes beside it while writing. */
const SQLITE_FILES: ReadonlyArray<readonly [suffix: string, what: string]> = [
  ['', 'the SQLite database'],
  ['-wal', "the SQLite database's write-ahead log"],
  ['-shm', "the SQLite database's shared-memory index"],
  ['-journal', "the SQLite database's rollback journal"],
];

/** A file as the operating system knows it: where it is, and (when it exists) its device and inode. */
interface FileIdentity {
  readonly path: string;
  readonly inode?: string;
}

/**
 * Refuses an `--out` (a report, a schema diff) that is the configured SQLite database or one of the files
 * SQLite keeps beside it: a file written there replaces the database, and the access log in it, or the
 * write-ahead log holding its latest commits. The same file under another name (a link, `..`) is the same
 * file; a companion that does not exist yet (the write-ahead log between runs) is refused by where it will be.
 * Thrown as `refuse(message)`: bad input by default, the command's own coded error where it has one.
 */
export function refuseDatabaseAsOut(out: string, database: DatabaseConfig, refuse: (message: string) => Error = badInput): void {
  if (database.driver !== 'sqlite') return;
  const target = identify(out);
  for (const [suffix, what] of SQLITE_FILES) {
    const file = identify(database.path + suffix);
    const same = target.inode !== undefined && file.inode !== undefined ? target.inode === file.inode : target.path === file.path;
    if (same) throw refuse(`--out ${out} is ${what} (DATABASE_URL): writing there would destroy the database and its access log; choose another file`);
  }
}

function identify(path: string): FileIdentity {
  try {
    const stats = statSync(path, { bigint: true });
    return { path: realpathSync(path), inode: `${stats.dev}:${stats.ino}` };
  } catch {
    return { path: whereItWouldBe(path) };
  }
}

/**
 * Where a file that does not exist would be created: in its directory as the kernel resolves it (links,
 * `..`), or, for a link pointing at no file, where the link points (a write through it creates that file).
 */
function whereItWouldBe(path: string, linksFollowed = 0): string {
  try {
    // As many links as Linux follows before it gives up (ELOOP).
    if (linksFollowed < 40 && lstatSync(path).isSymbolicLink()) {
      const target = readlinkSync(path);
      return whereItWouldBe(isAbsolute(target) ? target : `${dirname(path)}/${target}`, linksFollowed + 1);
    }
  } catch {
    // Nothing at the path: it is where it says.
  }
  try {
    return join(realpathSync(dirname(path)), basename(path));
  } catch {
    return resolve(path);
  }
}
