import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, expectProblem, testDatabases, type Account, type TestApp } from '../helpers.js'

type Task = Record<string, any>

const MISSING_ID = '00000000-0000-4000-8000-000000000000'
const FIELDS = ['completed', 'created_at', 'description', 'due_date', 'id', 'priority', 'recurrence', 'reminders', 'tags', 'title', 'updated_at', 'user_id']

/** `/api/{user_id}/tasks...` in the user's own name unless another id is given. */
const tasksUrl = (userId: string, rest = '') => `/api/${encodeURIComponent(userId)}/tasks${rest}`

describe.each(testDatabases)('classic /api/{user_id}/tasks on $name', (target) => {
  let t: TestApp
  let alice: Account
  let mallory: Account
  beforeAll(async () => {
    t = await buildTestApp(target)
    alice = await t.signUp()
    mallory = await t.signUp()
  })
  afterAll(() => t.close())

  /** Creates a task through the classic POST and returns its JSON. */
  const createClassic = async (account: Account, payload: Record<string, unknown>): Promise<Task> => {
    const res = await t.inject({ method: 'POST', url: tasksUrl(account.id), headers: account.headers, payload })
    if (res.statusCode !== 201) throw new Error(`classic create failed: ${res.statusCode} ${res.body}`)
    return res.json()
  }
  const listClassic = async (account: Account, query = ''): Promise<Task[]> => {
    const res = await t.inject({ url: tasksUrl(account.id, query), headers: account.headers })
    expect(res.statusCode).toBe(200)
    return res.json()
  }
  const readV1 = async (account: Account, id: string): Promise<Task> => {
    const res = await t.inject({ url: `/api/v1/tasks/${id}`, headers: account.headers })
    expect(res.statusCode).toBe(200)
    return res.json()
  }

  /** Every classic operation on one task (or the list) in the name of `userId`. */
  const operations = (userId: string, taskId: string) => [
    { method: 'GET' as const, url: tasksUrl(userId) },
    { method: 'POST' as const, url: tasksUrl(userId), payload: { title: 'pwned' } },
    { method: 'GET' as const, url: tasksUrl(userId, `/${taskId}`) },
    { method: 'PUT' as const, url: tasksUrl(userId, `/${taskId}`), payload: { title: 'pwned', completed: true } },
    { method: 'PATCH' as const, url: tasksUrl(userId, `/${taskId}/complete`) },
    { method: 'DELETE' as const, url: tasksUrl(userId, `/${taskId}`) },
  ]

  describe('authentication', () => {
    it('answers 401 problem+json on every route without a valid bearer token, and changes nothing', async () => {
      const task = await createClassic(alice, { title: 'Guarded' })
      const before = await readV1(alice, task.id)
      for (const headers of [{}, { authorization: 'Bearer not-a-token' }, { authorization: alice.accessToken }]) {
        for (const op of operations(alice.id, task.id)) {
          const res = await t.inject({ ...op, headers })
          expectProblem(res, 401)
          expect(res.headers['www-authenticate'], `${op.method} ${op.url}`).toBe('Bearer')
        }
      }
      expect(await readV1(alice, task.id)).toEqual(before)
      expect((await listClassic(alice)).filter((x) => x.title === 'pwned')).toEqual([])
    })
  })

  describe('the user_id in the path', () => {
    it("answers 403 on every route for another existing user's id, and changes nothing", async () => {
      const task = await createClassic(alice, { title: 'Alice only' })
      const before = await readV1(alice, task.id)
      for (const op of operations(alice.id, task.id)) {
        expectProblem(await t.inject({ ...op, headers: mallory.headers }), 403)
      }
      expect(await readV1(alice, task.id)).toEqual(before)
      expect((await listClassic(alice)).map((x) => x.title)).not.toContain('pwned')
      expect((await listClassic(mallory)).map((x) => x.title)).not.toContain('pwned')
    })

    it("answers 403 for another user's id even with the caller's own task id", async () => {
      const own = await createClassic(mallory, { title: 'Mallory own' })
      const before = await readV1(mallory, own.id)
      for (const op of operations(alice.id, own.id)) {
        expectProblem(await t.inject({ ...op, headers: mallory.headers }), 403)
      }
      expect(await readV1(mallory, own.id)).toEqual(before)
    })

    it('answers 403 for a user id that does not exist', async () => {
      const own = await createClassic(mallory, { title: 'Mallory again' })
      for (const userId of [MISSING_ID, 'someone-else', alice.id.toUpperCase()]) {
        for (const op of operations(userId, own.id)) {
          expectProblem(await t.inject({ ...op, headers: mallory.headers }), 403)
        }
      }
      expect(await readV1(mallory, own.id)).toMatchObject({ title: 'Mallory again', completed: false, version: 1 })
    })
  })

  describe('isolation', () => {
    it("answers 404 on GET, PUT, DELETE and PATCH complete for another user's task, and leaves it unchanged", async () => {
      const task = await createClassic(alice, { title: 'Private', description: 'secret' })
      const before = await readV1(alice, task.id)
      const url = tasksUrl(mallory.id, `/${task.id}`)
      expect(expectProblem(await t.inject({ url, headers: mallory.headers }), 404).detail).toBe('task not found')
      expectProblem(await t.inject({ method: 'PUT', url, headers: mallory.headers, payload: { title: 'pwned', completed: true } }), 404)
      expectProblem(await t.inject({ method: 'PATCH', url: `${url}/complete`, headers: mallory.headers }), 404)
      expectProblem(await t.inject({ method: 'DELETE', url, headers: mallory.headers }), 404)
      expect((await listClassic(mallory)).map((x) => x.id)).not.toContain(task.id)

      expect(await readV1(alice, task.id)).toEqual(before)
      const classic = await t.inject({ url: tasksUrl(alice.id, `/${task.id}`), headers: alice.headers })
      expect(classic.json()).toEqual(task)
    })

    it('answers 404 for a task that does not exist, exactly as for one of another user', async () => {
      const url = tasksUrl(alice.id, `/${MISSING_ID}`)
      expect(expectProblem(await t.inject({ url, headers: alice.headers }), 404).detail).toBe('task not found')
      expectProblem(await t.inject({ method: 'PUT', url, headers: alice.headers, payload: { title: 'x' } }), 404)
      expectProblem(await t.inject({ method: 'PATCH', url: `${url}/complete`, headers: alice.headers }), 404)
      expectProblem(await t.inject({ method: 'DELETE', url, headers: alice.headers }), 404)
    })
  })

  describe('validation', () => {
    it.each([
      ['a blank title', { title: '   ' }, 'body.title'],
      ['an empty title', { title: '' }, 'body.title'],
      ['a title of 201 characters', { title: 'x'.repeat(201) }, 'body.title'],
      ['a description of 1001 characters', { title: 'ok', description: 'y'.repeat(1001) }, 'body.description'],
      ['an unknown field', { title: 'ok', owner: 'me' }, 'body.owner'],
      ['a client-set user_id', { title: 'ok', user_id: '00000000-0000-4000-8000-000000000001' }, 'body.user_id'],
      ['a number as title', { title: 5 }, 'body.title'],
      ['a number as description', { title: 'ok', description: 5 }, 'body.description'],
      ['a missing title', { description: 'no title' }, 'body.title'],
    ])('refuses a POST with %s with a 422 naming the field, and stores nothing', async (_, payload, path) => {
      const owner = await t.signUp()
      const res = await t.inject({ method: 'POST', url: tasksUrl(owner.id), headers: owner.headers, payload })
      const problem = expectProblem(res, 422)
      expect(problem.errors.map((e: { path: string }) => e.path)).toContain(path)
      expect(await listClassic(owner)).toEqual([])
      expect((await t.inject({ url: '/api/v1/tasks', headers: owner.headers })).json().items).toEqual([])
    })

    it.each([
      ['a blank title', { title: ' ' }, 'body.title'],
      ['a missing title', { completed: true }, 'body.title'],
      ['a title of 201 characters', { title: 'x'.repeat(201) }, 'body.title'],
      ['a description of 1001 characters', { title: 'ok', description: 'y'.repeat(1001) }, 'body.description'],
      ['an unknown field', { title: 'ok', dueAt: '2026-12-01T17:00:00Z' }, 'body.dueAt'],
      ['a priority not in the list', { title: 'ok', priority: 'urgent' }, 'body.priority'],
      ['a leap-second due date', { title: 'ok', due_date: '2026-06-30T23:59:60Z' }, 'body.due_date'],
      ['a string as completed', { title: 'ok', completed: 'yes' }, 'body.completed'],
      ['a number as title', { title: 7 }, 'body.title'],
    ])('refuses a PUT with %s with a 422 naming the field, and changes nothing', async (_, payload, path) => {
      const task = await createClassic(alice, { title: 'Stable', description: 'kept' })
      const before = await readV1(alice, task.id)
      const res = await t.inject({ method: 'PUT', url: tasksUrl(alice.id, `/${task.id}`), headers: alice.headers, payload })
      const problem = expectProblem(res, 422)
      expect(problem.errors.map((e: { path: string }) => e.path)).toContain(path)
      expect(await readV1(alice, task.id)).toEqual(before)
    })

    it.each([
      ['?status=done', 'query.status'],
      ['?limit=0', 'query.limit'],
      ['?limit=1001', 'query.limit'],
      ['?limit=ten', 'query.limit'],
    ])('refuses the list query %s with a 422', async (query, path) => {
      const problem = expectProblem(await t.inject({ url: tasksUrl(alice.id, query), headers: alice.headers }), 422)
      expect(problem.errors.map((e: { path: string }) => e.path)).toContain(path)
    })

    it('names the fields a route accepts when a body carries one it does not', async () => {
      const problem = expectProblem(await t.inject({ method: 'POST', url: tasksUrl(alice.id), headers: alice.headers, payload: { title: 'ok', dueAt: 'x', color: 'red' } }), 422)
      expect(problem.detail).toContain('dueAt, color')
      expect(problem.detail).toContain('it accepts: title, description, priority, tags, due_date')
    })

    it('answers 422 for a task id that is not a UUID', async () => {
      for (const [method, rest] of [['GET', ''], ['PUT', ''], ['DELETE', ''], ['PATCH', '/complete']] as const) {
        const res = await t.inject({
          method, url: tasksUrl(alice.id, `/not-a-uuid${rest}`), headers: alice.headers,
          ...(method === 'PUT' && { payload: { title: 'x' } }),
        })
        expect(expectProblem(res, 422).errors[0].path, method).toBe('path.id')
      }
    })
  })

  describe('happy path', () => {
    it('creates a task as 201 with exactly the snake_case fields, and reads it back', async () => {
      const created = await t.inject({
        method: 'POST', url: tasksUrl(alice.id), headers: alice.headers, payload: { title: 'Buy milk', description: 'two litres' },
      })
      expect(created.statusCode).toBe(201)
      const task = created.json()
      expect(Object.keys(task).sort()).toEqual(FIELDS)
      expect(task).toMatchObject({ user_id: alice.id, title: 'Buy milk', description: 'two litres', completed: false })
      expect(task.id).toMatch(/^[0-9a-f-]{36}$/)
      expect(new Date(task.created_at).toISOString()).toBe(task.created_at)
      expect(new Date(task.updated_at).toISOString()).toBe(task.updated_at)

      const read = await t.inject({ url: tasksUrl(alice.id, `/${task.id}`), headers: alice.headers })
      expect(read.statusCode).toBe(200)
      expect(read.json()).toEqual(task)
    })

    it('accepts the longest title and description, and a missing or null description', async () => {
      const longest = await createClassic(alice, { title: 'x'.repeat(200), description: 'y'.repeat(1000) })
      expect(longest.title).toHaveLength(200)
      expect(longest.description).toHaveLength(1000)
      expect((await createClassic(alice, { title: 'no description' })).description).toBeNull()
      expect((await createClassic(alice, { title: 'null description', description: null })).description).toBeNull()
    })

    it('replaces title, description and completed with PUT; omitted ones become null and false', async () => {
      const task = await createClassic(alice, { title: 'Draft', description: 'first' })
      const url = tasksUrl(alice.id, `/${task.id}`)
      const full = await t.inject({ method: 'PUT', url, headers: alice.headers, payload: { title: 'Final', description: 'second', completed: true } })
      expect(full.statusCode).toBe(200)
      expect(full.json()).toMatchObject({ id: task.id, user_id: alice.id, title: 'Final', description: 'second', completed: true, created_at: task.created_at })
      expect(Object.keys(full.json()).sort()).toEqual(FIELDS)
      expect(Date.parse(full.json().updated_at)).toBeGreaterThanOrEqual(Date.parse(task.updated_at))

      const bare = await t.inject({ method: 'PUT', url, headers: alice.headers, payload: { title: 'Only title' } })
      expect(bare.statusCode).toBe(200)
      expect(bare.json()).toMatchObject({ title: 'Only title', description: null, completed: false })
      expect((await t.inject({ url, headers: alice.headers })).json()).toEqual(bare.json())
    })

    it('toggles completion with PATCH complete: true, then false again', async () => {
      const task = await createClassic(alice, { title: 'Toggle me' })
      const url = tasksUrl(alice.id, `/${task.id}/complete`)
      const first = await t.inject({ method: 'PATCH', url, headers: alice.headers })
      expect(first.statusCode).toBe(200)
      expect(first.json()).toMatchObject({ id: task.id, title: 'Toggle me', completed: true })
      const v1Done = await readV1(alice, task.id)
      expect(v1Done.completed).toBe(true)
      expect(Date.parse(v1Done.completedAt)).toBeGreaterThan(0)

      const second = await t.inject({ method: 'PATCH', url, headers: alice.headers })
      expect(second.statusCode).toBe(200)
      expect(second.json()).toMatchObject({ id: task.id, completed: false })
      expect(await readV1(alice, task.id)).toMatchObject({ completed: false, completedAt: null })
    })

    it('deletes a task as 204 with no body; then it is 404', async () => {
      const task = await createClassic(alice, { title: 'Short-lived' })
      const url = tasksUrl(alice.id, `/${task.id}`)
      const deleted = await t.inject({ method: 'DELETE', url, headers: alice.headers })
      expect(deleted.statusCode).toBe(204)
      expect(deleted.body).toBe('')
      expectProblem(await t.inject({ url, headers: alice.headers }), 404)
      expectProblem(await t.inject({ method: 'DELETE', url, headers: alice.headers }), 404)
      expectProblem(await t.inject({ url: `/api/v1/tasks/${task.id}`, headers: alice.headers }), 404)
    })
  })

  describe('list', () => {
    it('lists only your tasks as an array, newest first, filtered by status and limited', async () => {
      const owner = await t.signUp()
      await createClassic(mallory, { title: 'not yours' })
      expect(await listClassic(owner)).toEqual([])
      const created: Array<{ id: string, createdAt: string }> = []
      for (let i = 0; i < 5; i++) {
        const task = await createClassic(owner, { title: `task ${i}` })
        created.push({ id: task.id, createdAt: task.created_at })
      }
      const ids = created.map((task) => task.id)
      // Newest first, by creation time (milliseconds) and then id: two creates within one
      // millisecond tie on the time, and the id decides, not the order they were made in.
      const newestFirst = [...created].sort((a, b) =>
        a.createdAt !== b.createdAt ? (a.createdAt < b.createdAt ? 1 : -1) : (a.id < b.id ? 1 : -1)).map((task) => task.id)
      for (const id of [ids[1], ids[3]]) {
        expect((await t.inject({ method: 'PATCH', url: tasksUrl(owner.id, `/${id}/complete`), headers: owner.headers })).statusCode).toBe(200)
      }
      const completed = new Set([ids[1], ids[3]])

      const all = await listClassic(owner)
      expect(Array.isArray(all)).toBe(true)
      expect(all.map((x) => x.id)).toEqual(newestFirst)
      for (const task of all) {
        expect(Object.keys(task).sort()).toEqual(FIELDS)
        expect(task.user_id).toBe(owner.id)
      }
      expect((await listClassic(owner, '?status=all')).map((x) => x.id)).toEqual(newestFirst)
      expect((await listClassic(owner, '?status=completed')).map((x) => x.id)).toEqual(newestFirst.filter((id) => completed.has(id)))
      expect((await listClassic(owner, '?status=pending')).map((x) => x.id)).toEqual(newestFirst.filter((id) => !completed.has(id)))
      expect((await listClassic(owner, '?limit=2')).map((x) => x.id)).toEqual(newestFirst.slice(0, 2))
      expect((await listClassic(owner, '?limit=1&status=pending')).map((x) => x.id)).toEqual(newestFirst.filter((id) => !completed.has(id)).slice(0, 1))
      expect((await listClassic(owner, '?limit=1000')).map((x) => x.id)).toEqual(newestFirst)
    })
  })

  describe('priorities, tags, due dates, search, filters and sorts (the later levels of the contract)', () => {
    it('takes priority, tags and due_date on POST and PUT, returns them in every task, and PUT clears what it omits', async () => {
      const task = await createClassic(alice, { title: 'Pay rent', priority: 'high', tags: ['home', 'money'], due_date: '2026-12-01T09:00:00+01:00' })
      expect(task).toMatchObject({ priority: 'high', tags: ['home', 'money'], due_date: '2026-12-01T08:00:00.000Z' })
      expect(await readV1(alice, task.id)).toMatchObject({ priority: 'high', tags: ['home', 'money'], dueAt: '2026-12-01T08:00:00.000Z' })
      const url = tasksUrl(alice.id, `/${task.id}`)
      const put = await t.inject({ method: 'PUT', url, headers: alice.headers, payload: { title: 'Pay rent', priority: 'low', due_date: null } })
      expect(put.json()).toMatchObject({ priority: 'low', tags: [], due_date: null, completed: false })
      const bare = await t.inject({ method: 'PUT', url, headers: alice.headers, payload: { title: 'Pay rent' } })
      expect(bare.json()).toMatchObject({ priority: 'none', tags: [], due_date: null })
      expect(bare.json()).toEqual((await t.inject({ url, headers: alice.headers })).json())
    })

    it('filters by search, priority, tag and due dates, and sorts by created, due_date, priority or title, either way', async () => {
      const owner = await t.signUp()
      await createClassic(owner, { title: 'Alpha report', priority: 'low', tags: ['work'], due_date: '2026-12-03T00:00:00Z' })
      await createClassic(owner, { title: 'Bravo', description: 'the REPORT is due', priority: 'high', tags: ['Work', 'urgent'], due_date: '2026-12-01T00:00:00Z' })
      await createClassic(owner, { title: 'Charlie', priority: 'medium', tags: ['home'] })
      const titles = async (query: string) => (await listClassic(owner, query)).map((task) => task.title)
      expect(await titles('?search=report')).toEqual(['Bravo', 'Alpha report']) // newest first
      expect(await titles('?priority=high')).toEqual(['Bravo'])
      expect(await titles('?tag=work')).toEqual(['Bravo', 'Alpha report'])
      expect(await titles('?tag=work&tag=urgent')).toEqual(['Bravo'])
      expect(await titles('?due_before=2026-12-02T00:00:00Z')).toEqual(['Bravo'])
      expect(await titles('?due_after=2026-12-02T00:00:00Z')).toEqual(['Alpha report'])
      expect(await titles('?sort=created')).toEqual(['Charlie', 'Bravo', 'Alpha report'])
      expect(await titles('?sort=created&order=asc')).toEqual(['Alpha report', 'Bravo', 'Charlie'])
      expect(await titles('?sort=due_date')).toEqual(['Bravo', 'Alpha report', 'Charlie']) // no due date: last
      expect(await titles('?sort=due_date&order=desc')).toEqual(['Alpha report', 'Bravo', 'Charlie'])
      expect(await titles('?sort=priority&order=desc')).toEqual(['Bravo', 'Charlie', 'Alpha report'])
      expect(await titles('?sort=title')).toEqual(['Alpha report', 'Bravo', 'Charlie'])
      expect(await titles('?sort=title&order=desc&status=pending&limit=2')).toEqual(['Charlie', 'Bravo'])
      for (const query of ['?sort=due', '?order=up', '?priority=urgent', '?due_before=tomorrow']) {
        expectProblem(await t.inject({ url: tasksUrl(owner.id, query), headers: owner.headers }), 422)
      }
    })
  })

  describe('beside /api/v1', () => {
    it('lists a task created through /api/v1 with the same id and title', async () => {
      const v1 = await t.createTask(alice, { title: 'From v1', description: 'made there', priority: 'high', tags: ['x'] })
      const listed = (await listClassic(alice)).find((x) => x.id === v1.id)
      expect(listed).toEqual({
        id: v1.id, user_id: alice.id, title: 'From v1', description: 'made there', completed: false,
        priority: 'high', tags: ['x'], due_date: null, recurrence: null, reminders: [], created_at: v1.createdAt, updated_at: v1.updatedAt,
      })
      const read = await t.inject({ url: tasksUrl(alice.id, `/${v1.id}`), headers: alice.headers })
      expect(read.json()).toEqual(listed)
    })

    it('reads a classic task through /api/v1 with the v1 defaults, and a classic PUT bumps its version', async () => {
      const task = await createClassic(alice, { title: 'From classic', description: 'made here' })
      expect(await readV1(alice, task.id)).toMatchObject({
        id: task.id, title: 'From classic', description: 'made here', completed: false, completedAt: null,
        version: 1, priority: 'none', tags: [], createdAt: task.created_at, updatedAt: task.updated_at,
      })
      const put = await t.inject({
        method: 'PUT', url: tasksUrl(alice.id, `/${task.id}`), headers: alice.headers, payload: { title: 'Renamed', completed: true },
      })
      expect(put.statusCode).toBe(200)
      const after = await readV1(alice, task.id)
      expect(after).toMatchObject({ title: 'Renamed', description: null, completed: true, version: 2, updatedAt: put.json().updated_at })
      expect(Date.parse(after.completedAt)).toBeGreaterThan(0)
    })

    it('keeps the v1 version moving when the classic API toggles', async () => {
      const task = await createClassic(alice, { title: 'Versioned' })
      await t.inject({ method: 'PATCH', url: tasksUrl(alice.id, `/${task.id}/complete`), headers: alice.headers })
      expect(await readV1(alice, task.id)).toMatchObject({ completed: true, version: 2 })
    })
  })

  describe('OpenAPI', () => {
    it('documents the classic paths under the tag classic, with the bearer scheme', async () => {
      const res = await t.inject({ url: '/openapi.json' })
      expect(res.statusCode).toBe(200)
      const doc = res.json()
      expect(doc.tags.map((tag: { name: string }) => tag.name)).toContain('classic')
      const operations: Record<string, string[]> = {
        '/api/{user_id}/tasks': ['get', 'post'],
        '/api/{user_id}/tasks/{id}': ['get', 'put', 'delete'],
        '/api/{user_id}/tasks/{id}/complete': ['patch'],
      }
      for (const [path, methods] of Object.entries(operations)) {
        for (const method of methods) {
          const op = doc.paths[path]?.[method]
          expect(op, `${method} ${path}`).toBeDefined()
          expect(op.tags, `${method} ${path} tags`).toEqual(['classic'])
          expect(op.security, `${method} ${path} security`).toEqual([{ bearerAuth: [] }])
          expect(Object.keys(op.responses), `${method} ${path} responses`).toEqual(expect.arrayContaining(['401', '403', '422']))
        }
      }
      expect(doc.paths['/api/{user_id}/tasks'].post.responses['201']).toBeDefined()
      expect(doc.paths['/api/{user_id}/tasks/{id}'].delete.responses['204']).toBeDefined()
      expect(doc.paths['/api/{user_id}/tasks'].post.requestBody.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/ClassicNewTask' })
      expect(doc.components.schemas.ClassicNewTask.properties.title).toMatchObject({ maxLength: 200 })
    })
  })
})
