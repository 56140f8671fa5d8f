import { copyFileSync, cpSync, existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * An embedded data directory with every migration applied and no data, made by the build
 * (scripts/build-if-stale.mjs, again whenever a migration changes) and never opened in place: a
 * first start copies it instead of running initdb. Resolves to <root>/dist/embedded-seed from src/db
 * and dist/db alike. It holds no secret (the signing secret is a file a start writes beside the
 * data, auth/secret.ts) and no user data; every copy shares its PostgreSQL system identifier, which
 * only replication reads.
 */
export const SEED_DIR = fileURLToPath(new URL('../../dist/embedded-seed', import.meta.url))

/**
 * How an empty data directory became a database: a copy of the seed, or PGlite's initdb when there
 * is no seed. initdb runs a second PostgreSQL in the process and loads its output through memory:
 * measured with the built server on an empty DATA_DIR (issue 21), the first start peaked at 861 MB
 * resident and held 830 MB 8 s after it was ready; from the seed, 296 MB and 278 MB, as a start on a
 * kept directory does.
 */
export type Created = 'seed' | 'initdb'

/**
 * Copies the seed into `dataDir` (existing, without PG_VERSION); false when there is no seed.
 * PG_VERSION, which PGlite reads as "a database is here", is copied last: a start killed during the
 * copy leaves a directory the next start copies into again, never a partial database it would open.
 * Synchronous, in the database's thread, which has nothing else to do yet: 1,075 files took 240-320
 * ms of CPU this way and 525-580 ms with fs.promises.cp.
 */
export function copySeed (seed: string, dataDir: string): boolean {
  const version = join(resolve(seed), 'PG_VERSION')
  if (!existsSync(version)) return false
  cpSync(seed, dataDir, { recursive: true, filter: (source) => resolve(source) !== version })
  copyFileSync(version, join(dataDir, 'PG_VERSION'))
  return true
}
