import { existsSync } from 'node:fs'
import { afterAll, describe, expect, it } from 'vitest'
import { openEmbedded } from '../../src/db/client.js'
import type { Created } from '../../src/db/embedded-seed.js'
import { statement } from '../../src/db/sql.js'
import { removeDir, tempDir } from '../faults/support.js'

const COUNT_TASKS = statement('select count(*)::int as n from tasks')

/** A first open of a data directory (src/db/embedded-seed.ts); test/server.test.ts starts a server on one. */
describe('an embedded data directory without a database', () => {
  const dirs: string[] = []
  afterAll(async () => { for (const dir of dirs) await removeDir(dir) })

  it('starts as a copy of the migrated seed: the schema is there before migrate runs', async () => {
    const dir = await tempDir('seed-copy')
    dirs.push(dir)
    const created: Created[] = []
    const database = await openEmbedded(dir, { created: (how) => created.push(how) })
    try {
      expect(created).toEqual(['seed'])
      expect(await database.query(COUNT_TASKS)).toEqual([{ n: 0 }])
    } finally {
      await database.close()
    }
  })

  it('is made by initdb when the seed is missing, and migrated as before', async () => {
    const dir = await tempDir('seed-missing')
    dirs.push(dir)
    const created: Created[] = []
    const database = await openEmbedded(dir, { seed: `${dir}-no-such-seed`, created: (how) => created.push(how) })
    try {
      expect(created).toEqual(['initdb'])
      expect(existsSync(`${dir}/PG_VERSION`)).toBe(true)
      await database.migrate()
      expect(await database.query(COUNT_TASKS)).toEqual([{ n: 0 }])
    } finally {
      await database.close()
    }
  }, 90_000) // an initdb: several seconds of CPU on a busy 2-core machine
})
