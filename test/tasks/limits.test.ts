import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { statement } from '../../src/db/sql.js'
import { MAX_PAGE_BYTES } from '../../src/http/page-size.js'
import { buildTestApp, expectProblem, testDatabases, type Account, type TestApp } from '../helpers.js'

/**
 * Pages are bounded by bytes as well as by count: 1,000 tasks of ~45 KB made /sync and the classic
 * list answer up to 45 MB at once (issue 11). Each task here is ~60 KB of JSON: a description of
 * 10,000 control characters, six bytes each once escaped.
 */
describe.each(testDatabases)('size limits on $name', (target) => {
  let t: TestApp
  let heavy: Account
  const HEAVY_TASKS = 120
  beforeAll(async () => {
    t = await buildTestApp(target, { env: { TASKS_PER_USER_MAX: '200' } })
    heavy = await t.signUp()
    await t.database.query(statement(`insert into tasks (user_id, title, description, created_at)
      select $1, 'heavy ' || g, repeat(chr(1), 10000), now() - make_interval(secs => g) from generate_series(1, $2::int) g`), [heavy.id, HEAVY_TASKS])
  })
  afterAll(() => t.close())

  it('ends a /sync page by bytes and goes on with hasMore, missing nothing', async () => {
    const seen = new Set<string>()
    let since = ''
    for (let pages = 0; pages < 20; pages++) {
      const res = await t.inject({ url: `/api/v1/sync?limit=1000${since}`, headers: heavy.headers })
      expect(res.statusCode).toBe(200)
      expect(res.rawPayload.length).toBeLessThanOrEqual(MAX_PAGE_BYTES)
      const page = res.json()
      for (const change of page.changes) seen.add(change.task.id)
      since = `&since=${encodeURIComponent(page.cursor)}`
      if (!page.hasMore) break
    }
    expect(seen.size).toBe(HEAVY_TASKS)
  })

  it('ends a list page by bytes, with a cursor that goes on from there', async () => {
    const seen = new Set<string>()
    let cursor = ''
    let pages = 0
    do {
      const res = await t.inject({ url: `/api/v1/tasks?limit=100${cursor}`, headers: heavy.headers })
      expect(res.rawPayload.length).toBeLessThanOrEqual(MAX_PAGE_BYTES)
      const page = res.json()
      expect(page.items.length).toBeLessThan(100)
      for (const task of page.items) seen.add(task.id)
      cursor = page.nextCursor ? `&cursor=${page.nextCursor}` : ''
      pages++
    } while (cursor && pages < 10)
    expect(seen.size).toBe(HEAVY_TASKS)
    expect(pages).toBeGreaterThan(1)
  })

  it('gives the classic list the newest tasks that fit in 4 MiB', async () => {
    const res = await t.inject({ url: `/api/${heavy.id}/tasks`, headers: heavy.headers })
    expect(res.statusCode).toBe(200)
    expect(res.rawPayload.length).toBeLessThanOrEqual(MAX_PAGE_BYTES)
    const titles = res.json().map((task: { title: string }) => task.title)
    expect(titles.length).toBeGreaterThan(10)
    expect(titles.length).toBeLessThan(HEAVY_TASKS)
    expect(titles.slice(0, 3)).toEqual(['heavy 1', 'heavy 2', 'heavy 3']) // newest first
  })

  it('refuses a create past TASKS_PER_USER_MAX with a 409 problem, on v1 and classic, and stores nothing', async () => {
    const full = await t.signUp()
    await t.database.query(statement(`insert into tasks (user_id, title) select $1, 'filler ' || g from generate_series(1, 200) g`), [full.id])
    const v1 = expectProblem(await t.inject({ method: 'POST', url: '/api/v1/tasks', headers: full.headers, payload: { title: 'one too many' } }), 409)
    expect(v1.type).toBe('urn:problem-type:taskbase:task-limit-reached')
    expect(v1.detail).toContain('200')
    expectProblem(await t.inject({ method: 'POST', url: `/api/${full.id}/tasks`, headers: full.headers, payload: { title: 'one too many' } }), 409)
    const idempotent = await t.inject({ method: 'POST', url: '/api/v1/tasks', headers: { ...full.headers, 'idempotency-key': 'k' }, payload: { title: 'x' } })
    expectProblem(idempotent, 409)
    const [count] = await t.database.query<{ n: number }>(statement('select count(*)::int as n from tasks where user_id = $1'), [full.id])
    expect(count!.n).toBe(200)
    // Deleting one makes room again.
    const { items: [first] } = (await t.inject({ url: '/api/v1/tasks?limit=1', headers: full.headers })).json()
    await t.inject({ method: 'DELETE', url: `/api/v1/tasks/${first.id}`, headers: full.headers })
    expect((await t.inject({ method: 'POST', url: '/api/v1/tasks', headers: full.headers, payload: { title: 'fits again' } })).statusCode).toBe(201)
  })
})
