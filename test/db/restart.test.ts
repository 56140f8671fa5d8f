import { rm } from 'node:fs/promises'
import { afterAll, describe, expect, it } from 'vitest'
import { openEmbedded } from '../../src/db/client.js'
import { seededDataDir } from '../faults/support.js'
import { buildTestApp, testDatabases, type Account } from '../helpers.js'

describe('the embedded database on a data directory', () => {
  const dirs: string[] = []
  afterAll(async () => { for (const dir of dirs) await rm(dir, { recursive: true, force: true }) })

  it('keeps users, tasks and sessions when the app is closed and built again', async () => {
    // Migrated already, as a first start leaves it: an initdb here took most of the test's 30 s on a busy machine.
    const dir = await seededDataDir('taskbase-restart-')
    dirs.push(dir)
    const target = testDatabases[0]!

    const first = await openEmbedded(dir)
    await first.migrate()
    const before = await buildTestApp(target, { database: first })
    const alice: Account = await before.signUp()
    const task = await before.createTask(alice, { title: 'Survives a restart', tags: ['durable'] })
    await before.close()
    await first.close()

    const second = await openEmbedded(dir)
    await second.migrate() // a second run finds nothing to do
    const after = await buildTestApp(target, { database: second })
    const read = await after.inject({ url: `/api/v1/tasks/${task.id}`, headers: alice.headers })
    expect(read.statusCode).toBe(200)
    expect(read.json()).toEqual(task)
    const refreshed = await after.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken: alice.refreshToken } })
    expect(refreshed.statusCode).toBe(200)
    await after.close()
    await second.close()
  }, 90_000) // two PGlite opens on disk: 20 s at load 8 on 2 cores
})
