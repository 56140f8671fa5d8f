import { closeSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { tryLock } from 'fs-native-extensions'

export class DataDirLockedError extends Error {
  constructor (readonly dataDir: string, readonly holderPid: number | undefined) {
    super(`The data directory ${dataDir} is in use by another taskbase process${holderPid === undefined ? '' : ` (pid ${holderPid})`}. ` +
      'Two processes on one embedded database lose data: stop that process, or set DATA_DIR to another ' +
      'directory, or use DATABASE_URL to share a PostgreSQL server.')
  }
}

/**
 * How long a lock still held is retried before the start is refused. The kernel releases a dead
 * process's lock when it closes that process's files, which comes late in its teardown: a SIGKILLed
 * server with a large heap (PGlite's memory) can hold the lock a moment after the signal, while its
 * replacement is already starting. A live holder is refused once this has passed.
 */
const HOLDER_TEARDOWN_MS = 3_000
const RETRY_MS = 50

/**
 * Takes the embedded database's directory for this process; resolves with the function that gives
 * it back. PGlite has no locking of its own and two processes on one directory silently corrupt it.
 *
 * The lock is an exclusive lock on `taskbase.lock` in the directory (an open-file-description lock
 * on Linux, flock on macOS, LockFileEx on Windows), on a descriptor kept open for the life of the
 * process. The kernel drops it when its holder dies, however it dies, so a crash leaves nothing to
 * clean up. No pid decides anything: a dead process can still answer kill(pid, 0) until it is
 * reaped, and in a new container its pid may be someone else's. The file holds our pid only so that
 * a refused start can name the holder.
 */
export async function lockDataDir (dataDir: string): Promise<() => void> {
  mkdirSync(dataDir, { recursive: true })
  const path = join(dataDir, 'taskbase.lock')
  const deadline = Date.now() + HOLDER_TEARDOWN_MS
  for (;;) {
    const fd = openSync(path, 'a+')
    let locked: boolean
    try {
      locked = tryLock(fd)
    } catch (error) {
      closeSync(fd)
      throw error
    }
    // A holder that stops removes the file while still holding its lock: a lock granted on the file
    // we opened before that is a lock on a file nobody else will open. Open the path again.
    if (locked && isSameFile(fd, path)) {
      ftruncateSync(fd, 0)
      writeSync(fd, `${process.pid}\n`)
      return releaser(fd, path)
    }
    closeSync(fd)
    if (!locked) {
      if (Date.now() >= deadline) throw new DataDirLockedError(dataDir, readPid(path))
      await sleep(RETRY_MS)
    }
  }
}

function releaser (fd: number, path: string): () => void {
  let held = true
  return () => {
    if (!held) return
    held = false
    // Removed before the lock goes (with the descriptor), so that the next holder creates a fresh file.
    try {
      if (isSameFile(fd, path)) unlinkSync(path)
    } catch { /* the lock still goes with the descriptor */ }
    closeSync(fd)
  }
}

function isSameFile (fd: number, path: string): boolean {
  try {
    const open = fstatSync(fd)
    const named = statSync(path)
    return open.ino === named.ino && open.dev === named.dev
  } catch {
    return false // no file at the path any more
  }
}

function readPid (path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8'), 10)
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}
