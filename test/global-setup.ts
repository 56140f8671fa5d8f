import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'
import { PGlite } from '@electric-sql/pglite'
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm'
import { drizzle } from 'drizzle-orm/pglite'
import { migrate } from 'drizzle-orm/pglite/migrator'
import { copySeed, SEED_DIR } from '../src/db/embedded-seed.js'
import { migrationsFolder } from '../src/db/shared.js'

declare module 'vitest' {
  export interface ProvidedContext {
    /** A migrated in-memory database as a tar (PGlite's dumpDataDir), each test's PGlite starts as a copy of. */
    pgliteTemplate: string
  }
}

/**
 * Before any test: the server is built when a source is newer than the last build, as `npm start`
 * does (scripts/build-if-stale.mjs, a few seconds; nothing when it is fresh). The tests that run
 * real server processes start `node dist/bundle/server.js`, as `npm start` does: from source through tsx,
 * every start cost 1.8 s more (4.6 s against 2.8 s for a restart), over some forty starts a run.
 * The build makes the embedded seed too (src/db/embedded-seed.ts), which every data directory of
 * the run starts as a copy of, as a first start's does.
 */
export default async function setup (project: TestProject): Promise<() => void> {
  const built = spawnSync(process.execPath, ['scripts/build-if-stale.mjs'], { stdio: 'inherit' })
  if (built.status !== 0) throw new Error('building the server for the process tests failed (node scripts/build-if-stale.mjs)')
  const root = mkdtempSync(join(tmpdir(), 'taskbase-template-'))
  project.provide('pgliteTemplate', await pgliteTemplate(root))
  return () => rmSync(root, { recursive: true, force: true })
}

/**
 * Every test file opens PGlite in memory, and an empty one costs an initdb: 10 s of CPU on a busy
 * 2-core machine against 1-1.5 s to load a copy of a migrated one. Made once per run, here, from a
 * copy of the seed (an open, not another initdb).
 */
async function pgliteTemplate (root: string): Promise<string> {
  const dir = join(root, 'seed-copy')
  mkdirSync(dir)
  if (!copySeed(SEED_DIR, dir)) throw new Error(`the build made no embedded seed at ${SEED_DIR}`)
  const db = await PGlite.create(dir, { extensions: { pg_trgm } })
  try {
    await migrate(drizzle({ client: db }), { migrationsFolder })
    const file = join(root, 'pglite-template.tar')
    writeFileSync(file, new Uint8Array(await (await db.dumpDataDir('none')).arrayBuffer()))
    return file
  } finally {
    await db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}
