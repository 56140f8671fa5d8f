import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, expectProblem, testDatabases, type Account, type TestApp } from '../helpers.js'

describe.each(testDatabases)('tasks CRUD on $name', (target) => {
  let t: TestApp
  let alice: Account
  let mallory: Account
  beforeAll(async () => {
    t = await buildTestApp(target)
    alice = await t.signUp()
    mallory = await t.signUp()
  })
  afterAll(() => t.close())

  describe('isolation', () => {
    it("answers 404 on every method for another user's task, and leaves it unchanged", async () => {
      const task = await t.createTask(alice, { title: 'Private', tags: ['secret'] })
      const url = `/api/v1/tasks/${task.id}`
      expectProblem(await t.inject({ url, headers: mallory.headers }), 404)
      expectProblem(await t.inject({ method: 'PATCH', url, headers: mallory.headers, payload: { title: 'pwned' } }), 404)
      expectProblem(await t.inject({ method: 'PATCH', url, headers: { ...mallory.headers, 'if-match': '*' }, payload: { completed: true } }), 404)
      expectProblem(await t.inject({ method: 'DELETE', url, headers: mallory.headers }), 404)
      expectProblem(await t.inject({ method: 'DELETE', url, headers: { ...mallory.headers, 'if-match': '*' } }), 404)
      const missing = await t.inject({ url: '/api/v1/tasks/00000000-0000-4000-8000-000000000000', headers: mallory.headers })
      expect(expectProblem(missing, 404).detail).toBe('task not found')

      for (const query of ['', '?tag=secret', '?q=Private', '?completed=false', '?sort=title', '?priority=none']) {
        const list = await t.inject({ url: `/api/v1/tasks${query}`, headers: mallory.headers })
        expect(list.statusCode).toBe(200)
        expect(list.json().items.map((i: { id: string }) => i.id)).not.toContain(task.id)
      }
      const after = await t.inject({ url, headers: alice.headers })
      expect(after.json()).toEqual(task)
    })
  })

  describe('validation', () => {
    it.each([
      ['a blank title', { title: '   ' }, 'body.title'],
      ['a title over 500 characters', { title: 'x'.repeat(501) }, 'body.title'],
      ['an unknown field', { title: 'ok', owner: 'me' }, 'body.owner'],
      ['a client-set id', { title: 'ok', id: '00000000-0000-4000-8000-000000000000' }, 'body.id'],
      ['a number as title', { title: 5 }, 'body.title'],
      ['a string as priority', { title: 'ok', priority: 'urgent' }, 'body.priority'],
      ['a date without time zone', { title: 'ok', dueAt: '2026-01-01T10:00:00' }, 'body.dueAt'],
      ['21 tags', { title: 'ok', tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }, 'body.tags'],
      ['a tag of 51 characters', { title: 'ok', tags: ['x'.repeat(51)] }, 'body.tags.0'],
      ['a missing title', { description: 'no title' }, 'body.title'],
      ['a NUL character in the title', { title: 'a\u0000b' }, 'body.title'],
      ['a lone surrogate in the title', { title: 'a\ud800b' }, 'body.title'],
      ['a NUL character in a tag', { title: 'ok', tags: ['fine', 'b\u0000d'] }, 'body.tags.1'],
      ['a due date in year 0000', { title: 'ok', dueAt: '0000-06-01T00:00:00Z' }, 'body.dueAt'],
    ])('refuses %s with a 400 naming the field, and stores nothing', async (_, payload, path) => {
      const owner = await t.signUp()
      const res = await t.inject({ method: 'POST', url: '/api/v1/tasks', headers: owner.headers, payload })
      const problem = expectProblem(res, 400)
      expect(problem.errors.map((e: { path: string }) => e.path)).toContain(path)
      const list = await t.inject({ url: '/api/v1/tasks', headers: owner.headers })
      expect(list.json().items).toEqual([])
    })

    it('refuses malformed JSON and an oversized body without storing anything', async () => {
      const owner = await t.signUp()
      const headers = { ...owner.headers, 'content-type': 'application/json' }
      expectProblem(await t.inject({ method: 'POST', url: '/api/v1/tasks', headers, payload: '{"title": "x"' }), 400)
      const huge = JSON.stringify({ title: 'x', description: 'y'.repeat(70 * 1024) })
      expectProblem(await t.inject({ method: 'POST', url: '/api/v1/tasks', headers, payload: huge }), 413)
      expectProblem(await t.inject({ method: 'POST', url: '/api/v1/tasks', headers, payload: '{"title":"x","__proto__":{"a":1}}' }), 400)
      expect((await t.inject({ url: '/api/v1/tasks', headers: owner.headers })).json().items).toEqual([])
    })

    it('refuses a PATCH that changes nothing or sets a read-only field, and changes nothing', async () => {
      const task = await t.createTask(alice, { title: 'Stable' })
      const url = `/api/v1/tasks/${task.id}`
      expectProblem(await t.inject({ method: 'PATCH', url, headers: alice.headers, payload: {} }), 400)
      for (const field of ['version', 'createdAt', 'userId', 'id']) {
        expectProblem(await t.inject({ method: 'PATCH', url, headers: alice.headers, payload: { [field]: 1 } }), 400)
      }
      expectProblem(await t.inject({ method: 'PATCH', url, headers: alice.headers, payload: { title: 'ok', completed: 'yes' } }), 400)
      expect((await t.inject({ url, headers: alice.headers })).json()).toEqual(task)
    })

    it('answers 400 for an id that is not a UUID', async () => {
      const problem = expectProblem(await t.inject({ url: '/api/v1/tasks/..%2F..%2Fetc', headers: alice.headers }), 400)
      expect(problem.errors[0].path).toBe('path.id')
    })
  })

  describe('happy path', () => {
    it('creates, reads, updates, completes, reopens and deletes a task', async () => {
      const created = await t.inject({
        method: 'POST', url: '/api/v1/tasks', headers: alice.headers,
        payload: { title: '  Buy milk  ', description: 'two litres 🥛', priority: 'high', dueAt: '2030-05-01T09:30:00+02:00', tags: ['Home', 'home', 'errands'] },
      })
      expect(created.statusCode).toBe(201)
      const task = created.json()
      expect(created.headers.location).toBe(`/api/v1/tasks/${task.id}`)
      expect(created.headers.etag).toMatch(/^"[^"]+"$/)
      expect(task).toMatchObject({
        title: 'Buy milk', description: 'two litres 🥛', priority: 'high', dueAt: '2030-05-01T07:30:00.000Z',
        tags: ['Home', 'errands'], completed: false, completedAt: null, version: 1,
      })

      const url = `/api/v1/tasks/${task.id}`
      const read = await t.inject({ url, headers: alice.headers })
      expect(read.json()).toEqual(task)
      expect(read.headers.etag).toBe(created.headers.etag)

      const done = await t.inject({ method: 'PATCH', url, headers: alice.headers, payload: { completed: true } })
      expect(done.statusCode).toBe(200)
      expect(done.json()).toMatchObject({ completed: true, version: 2, title: 'Buy milk' })
      expect(Date.parse(done.json().completedAt)).toBeGreaterThan(0)
      expect(done.headers.etag).not.toBe(created.headers.etag)

      const again = await t.inject({ method: 'PATCH', url, headers: alice.headers, payload: { completed: true } })
      expect(again.json().completedAt).toBe(done.json().completedAt)

      const reopened = await t.inject({ method: 'PATCH', url, headers: alice.headers, payload: { completed: false, description: null, dueAt: null, tags: [] } })
      expect(reopened.json()).toMatchObject({ completed: false, completedAt: null, description: null, dueAt: null, tags: [], version: 4 })

      const deleted = await t.inject({ method: 'DELETE', url, headers: alice.headers })
      expect(deleted.statusCode).toBe(204)
      expect(deleted.body).toBe('')
      expectProblem(await t.inject({ url, headers: alice.headers }), 404)
      expectProblem(await t.inject({ method: 'DELETE', url, headers: alice.headers }), 404)
    })

    it('lists newest first and pages with an opaque cursor', async () => {
      const owner = await t.signUp()
      const created: Array<{ id: string, createdAt: string }> = []
      for (let i = 0; i < 5; i++) {
        const { id, createdAt } = await t.createTask(owner, { title: `task ${i}` })
        created.push({ id, createdAt })
      }
      // Newest first, by createdAt (milliseconds) and then id: two creates within one millisecond
      // tie on the time, and the id decides, not the order they were made in.
      const newestFirst = [...created].sort((a, b) =>
        a.createdAt !== b.createdAt ? (a.createdAt < b.createdAt ? 1 : -1) : (a.id < b.id ? 1 : -1)).map((task) => task.id)
      const seen: string[] = []
      let cursor: string | null = null
      do {
        const query: string = cursor ? `?limit=2&cursor=${encodeURIComponent(cursor)}` : '?limit=2'
        const page = await t.inject({ url: `/api/v1/tasks${query}`, headers: owner.headers })
        expect(page.statusCode).toBe(200)
        expect(page.json().items.length).toBeLessThanOrEqual(2)
        seen.push(...page.json().items.map((i: { id: string }) => i.id))
        cursor = page.json().nextCursor
      } while (cursor)
      expect(seen).toEqual(newestFirst)
    })
  })
})
