import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  isProblem, JWT_SECRET, register, request, SHARED_URL, sleep, startServer, stopServer, throwawayDatabase, waitUntilUp,
  type Account, type Answer, type ServerProcess,
} from './support.js'

/**
 * More slow requests than pooled connections: another session holds an ACCESS EXCLUSIVE lock on
 * tasks, so every task query waits on it while holding its connection.
 */
describe.skipIf(!SHARED_URL)('the server process when every pooled connection is stuck', () => {
  const POOL_SIZE = 2
  const REQUEST_TIMEOUT_MS = 8000
  let database: Awaited<ReturnType<typeof throwawayDatabase>>
  let server: ServerProcess
  let account: Account

  beforeAll(async () => {
    database = await throwawayDatabase(SHARED_URL!)
    server = await startServer({
      DATABASE_URL: database.url, JWT_SECRET, DATABASE_POOL_SIZE: String(POOL_SIZE), REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    })
    await waitUntilUp(server)
    account = await register(server.base)
    expect((await request(server.base, '/api/v1/tasks', { method: 'POST', headers: account.auth, json: { title: 'before the lock' } })).status).toBe(201)
  }, 60_000)

  afterAll(async () => {
    await stopServer(server)
    await database?.drop()
  })

  it('answers the excess 503 within the request timeout, keeps /healthz up, and recovers when the lock goes', async () => {
    const locker = new pg.Client({ connectionString: database.url })
    await locker.connect()
    const t0 = performance.now()
    type Result = Answer | { error: string, ms: number }
    const timed = (p: Promise<Answer>): Promise<Result> => p.catch((e) => ({ error: String(e.cause?.code ?? e.name), ms: performance.now() - t0 }))
    let results: Result[]
    const health: Answer[] = []
    try {
      await locker.query('begin')
      await locker.query('lock table tasks in access exclusive mode')
      // 4 x the pool: lists and creates, all needing the locked table.
      const slow = Array.from({ length: POOL_SIZE * 4 }, (_, i) => timed(i % 2 === 0
        ? request(server.base, '/api/v1/tasks', { headers: account.auth, timeoutMs: REQUEST_TIMEOUT_MS + 5000 })
        : request(server.base, '/api/v1/tasks', { method: 'POST', headers: account.auth, json: { title: `during the lock ${i}` }, timeoutMs: REQUEST_TIMEOUT_MS + 5000 })))
      // The lock outlives the request timeout: nothing may wait for it that long.
      const healthLoop = (async () => {
        while (performance.now() - t0 < REQUEST_TIMEOUT_MS + 2000) {
          health.push(await request(server.base, '/healthz', { timeoutMs: 2000 }))
          await sleep(250)
        }
      })()
      results = await Promise.all(slow)
      await healthLoop
    } finally {
      await locker.query('rollback').catch(() => {})
      await locker.end()
    }

    const answers = results.filter((r): r is Answer => 'status' in r)
    expect(results.filter((r) => 'error' in r), 'requests without an answer').toEqual([])
    const unavailable = answers.filter((a) => a.status === 503)
    expect(unavailable.every((a) => isProblem(a) && a.retryAfter !== null)).toBe(true)
    // At least every request beyond the pool answers 503, and nothing answers after the request timeout.
    expect(unavailable.length).toBeGreaterThanOrEqual(POOL_SIZE * 3)
    expect(answers.map((a) => a.status).filter((s) => s !== 503 && s !== 200 && s !== 201)).toEqual([])
    expect(Math.max(...answers.map((a) => a.ms))).toBeLessThan(REQUEST_TIMEOUT_MS + 1000)
    expect(health.length).toBeGreaterThan(10)
    expect(health.every((h) => h.status === 200 && h.ms < 1000)).toBe(true)

    // The lock is gone: the pool serves again at once.
    const after = await request(server.base, '/api/v1/tasks', { headers: account.auth, timeoutMs: 5000 })
    expect(after.status).toBe(200)
    expect((await request(server.base, '/readyz')).status).toBe(200)
    const sorted = answers.map((a) => Math.round(a.ms)).sort((a, b) => a - b)
    console.log(`[faults] pool exhaustion: ${JSON.stringify({
      poolSize: POOL_SIZE,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      slowRequestsSent: results.length,
      answered503: unavailable.length,
      answeredOk: answers.filter((a) => a.status < 300).length,
      answerTimesMs: sorted,
      healthzChecks: health.length,
      slowestHealthzMs: Math.round(Math.max(...health.map((h) => h.ms))),
      firstAnswerAfterLockMs: Math.round(after.ms),
    })}`)
  }, 40_000)
})
