import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  JWT_SECRET, listAllIds, PGBOUNCER, register, request, SHARED_URL, startPgBouncer, startServer, stopServer,
  throwawayDatabase, waitUntilUp, within, type Bouncer, type ServerProcess,
} from './support.js'

/**
 * The task API through PgBouncer in transaction mode (Debian's 1.18: no prepared statements in that
 * mode, no startup parameters beyond a few), in front of the shared server. Each transaction may
 * run on another server connection, so any session state would leak or vanish.
 */
const skipReason = !SHARED_URL
  ? 'TEST_DATABASE_URL is not set'
  : !PGBOUNCER ? 'the pgbouncer binary is not installed (.ci/run installs it with apt-get)' : undefined
if (skipReason) console.warn(`[faults] skipping the PgBouncer tests: ${skipReason}`)

describe.skipIf(skipReason !== undefined)('the server process through PgBouncer in transaction mode', () => {
  let database: Awaited<ReturnType<typeof throwawayDatabase>>
  let bouncer: Bouncer
  const servers: ServerProcess[] = []

  beforeAll(async () => {
    database = await throwawayDatabase(SHARED_URL!)
    const shared = new URL(SHARED_URL!)
    bouncer = await startPgBouncer({ host: shared.hostname, port: Number(shared.port || 5432) }, { default_pool_size: 4 })
  }, 30_000)

  afterAll(async () => {
    for (const server of servers) await stopServer(server)
    await bouncer?.stop()
    await database?.drop()
  })

  const start = async () => {
    const server = await startServer({ DATABASE_URL: bouncer.url(database.name), JWT_SECRET, DATABASE_POOL_SIZE: '8' })
    servers.push(server)
    await waitUntilUp(server)
    return server
  }

  it('serves register, create, list, patch, delete and concurrent writes', async () => {
    const server = await start()
    const { base } = server
    const alice = await register(base)
    const bob = await register(base)

    const created = await request(base, '/api/v1/tasks', { method: 'POST', headers: alice.auth, json: { title: 'through the pooler', tags: ['a', 'b'] } })
    expect(created.status).toBe(201)
    const task = JSON.parse(created.body)
    const plain = await request(base, `/api/v1/tasks/${task.id}`, {
      method: 'PATCH', headers: { ...alice.auth, 'if-match': created.headers.get('etag')! }, json: { completed: true, priority: 'high' },
    })
    expect(plain.status).toBe(200)
    expect(JSON.parse(plain.body)).toMatchObject({ completed: true, priority: 'high' })
    const stale = await request(base, `/api/v1/tasks/${task.id}`, { method: 'PATCH', headers: { ...alice.auth, 'if-match': created.headers.get('etag')! }, json: { title: 'lost update' } })
    expect(stale.status).toBe(412)
    expect((await request(base, `/api/v1/tasks/${task.id}`, { headers: bob.auth })).status).toBe(404)

    // Concurrent writes by two users, with idempotent retries among them: 4 server connections serve 16 clients.
    const writes = await Promise.all(Array.from({ length: 120 }, (_, i) => {
      const who = i % 2 === 0 ? alice : bob
      const headers = i % 10 === 0 ? { ...who.auth, 'idempotency-key': `key-${Math.floor(i / 20)}` } : who.auth
      return request(base, '/api/v1/tasks', { method: 'POST', headers, json: { title: `concurrent ${i % 10 === 0 ? Math.floor(i / 20) : i}` } })
    }))
    const statuses = writes.map((w) => w.status)
    expect(statuses.filter((s) => s !== 201), JSON.stringify(writes.filter((w) => w.status !== 201).map((w) => w.body).slice(0, 3))).toEqual([])
    const updates = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      request(base, `/api/v1/tasks/${task.id}`, { method: 'PATCH', headers: alice.auth, json: { title: `renamed ${i}` } })))
    expect(updates.map((u) => u.status).filter((s) => s !== 200)).toEqual([])
    expect(JSON.parse((await request(base, `/api/v1/tasks/${task.id}`, { headers: alice.auth })).body).version).toBe(JSON.parse(plain.body).version + 20)

    const aliceIds = await listAllIds(base, alice)
    const bobIds = await listAllIds(base, bob)
    // 60 creates each; the 6 idempotent ones per user collapse into distinct keys (alice: keys 0..5 on even i)
    const expectedAlice = 1 + writes.filter((w, i) => i % 2 === 0 && w.status === 201).map((w) => JSON.parse(w.body).id).filter((id, j, all) => all.indexOf(id) === j).length
    expect(aliceIds.size).toBe(expectedAlice)
    expect(bobIds.size).toBe(writes.filter((w, i) => i % 2 === 1).map((w) => JSON.parse(w.body).id).filter((id, j, all) => all.indexOf(id) === j).length)

    const deleted = await request(base, `/api/v1/tasks/${task.id}`, { method: 'DELETE', headers: alice.auth })
    expect(deleted.status).toBe(204)
    expect((await request(base, `/api/v1/tasks/${task.id}`, { headers: alice.auth })).status).toBe(404)
    expect((await request(base, '/readyz')).status).toBe(200)
    console.log(`[faults] pgbouncer transaction mode: ${JSON.stringify({ concurrentCreates: writes.length, acknowledged: statuses.filter((s) => s === 201).length, aliceTasks: aliceIds.size, bobTasks: bobIds.size })}`)
  }, 60_000)

  it('starts a second process through the pooler while the first serves (migrations leave no lock behind)', async () => {
    const first = servers[0]!
    const account = await register(first.base)
    // Keep the first process busy so the pooler's server connections are shared around.
    let busy = true
    const load = (async () => {
      while (busy) await request(first.base, '/api/v1/tasks', { method: 'POST', headers: account.auth, json: { title: 'busy' } })
    })()
    try {
      const second = await within(start(), 20_000, 'the second process starting through the pooler')
      const res = await request(second.base, '/api/v1/tasks', { headers: account.auth })
      expect(res.status).toBe(200)
    } finally {
      busy = false
      await load
    }
  }, 40_000)
})
