import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export class DataDirLockedError extends Error {
  constructor (readonly dataDir: string, readonly holderPid: number) {
    super(`The data directory ${dataDir} is in use by another taskbase process (pid ${holderPid}). ` +
      'Two processes on one embedded database lose data: stop that process, or set DATA_DIR to another ' +
      'directory, or use DATABASE_URL to share a PostgreSQL server.')
  }
}

/**
 * Takes the embedded database's directory for this process. PGlite has no locking of its own and
 * two processes on one directory silently corrupt it, so the lock file is created exclusively and
 * holds our pid; a lock left by a dead process is taken over. Returns the release function.
 */
export function lockDataDir (dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true })
  const path = join(dataDir, 'taskbase.lock')
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx' })
      return () => {
        try {
          if (readPid(path) === process.pid) unlinkSync(path)
        } catch { /* already gone */ }
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const holder = readPid(path)
    if (holder !== undefined && holder !== process.pid && isAlive(holder)) throw new DataDirLockedError(dataDir, holder)
    // The holder is gone (or the file is unreadable junk): take the lock over.
    try { unlinkSync(path) } catch { /* another process took it over first; retry decides */ }
  }
  throw new Error(`Could not lock ${path}; is another process starting on the same DATA_DIR?`)
}

function readPid (path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8'), 10)
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM' // alive, owned by someone else
  }
}
