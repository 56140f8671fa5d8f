import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, expectProblem, testDatabases, type Account, type TestApp } from '../helpers.js'

describe.each(testDatabases)('routes, methods and query strings on $name', (target) => {
  let t: TestApp
  let alice: Account
  beforeAll(async () => {
    t = await buildTestApp(target)
    alice = await t.signUp()
  })
  afterAll(() => t.close())

  describe('a known path with an unsupported method', () => {
    it.each([
      ['TRACE', '/healthz', 'GET, HEAD'],
      ['POST', '/healthz', 'GET, HEAD'],
      ['DELETE', '/api/v1/tasks', 'GET, HEAD, POST'],
      ['PUT', '/api/v1/tasks/:id', 'GET, HEAD, PATCH, DELETE'],
      ['GET', '/api/v1/auth/login', 'POST'],
    ])('%s %s is 405 problem+json with Allow: %s', async (method, path, allow) => {
      const url = path.replace(':id', randomUUID())
      const res = await t.inject({ method: method as 'GET', url, headers: alice.headers })
      const body = expectProblem(res, 405)
      expect(res.headers.allow).toBe(allow)
      expect(body.detail).toContain(`${method} is not allowed`)
    })

    it('never takes /api/v1/... as a classic {user_id}: PUT of a v1 task is a 405, not a 403', async () => {
      const task = await t.createTask(alice, { title: 'v1' })
      const put = await t.inject({ method: 'PUT', url: `/api/v1/tasks/${task.id}`, headers: alice.headers, payload: { title: 'x' } })
      expectProblem(put, 405)
      // Without a token too: the method is wrong whoever asks.
      expectProblem(await t.inject({ method: 'PUT', url: `/api/v1/tasks/${task.id}` }), 405)
      expectProblem(await t.inject({ method: 'PATCH', url: `/api/v1/tasks/${task.id}/complete`, headers: alice.headers }), 404)
      expect((await t.inject({ url: `/api/v1/tasks/${task.id}`, headers: alice.headers })).json().title).toBe('v1')
    })

    it('an unknown path is still a 404', async () => {
      expectProblem(await t.inject({ url: '/api/v1/nope', headers: alice.headers }), 404)
    })
  })

  describe('integers in query strings', () => {
    it.each(['1e2', '0x10', '%205', '5%20', '+5', '5.0', '-1'])('refuses limit=%s with a 400 naming query.limit', async (value) => {
      const body = expectProblem(await t.inject({ url: `/api/v1/tasks?limit=${value}`, headers: alice.headers }), 400)
      expect(body.errors).toContainEqual({ path: 'query.limit', message: expect.any(String) })
    })

    it('refuses them on the classic list and /sync too (422 on the classic contract)', async () => {
      expect(expectProblem(await t.inject({ url: `/api/${alice.id}/tasks?limit=1e2`, headers: alice.headers }), 422).errors[0].path).toBe('query.limit')
      expect(expectProblem(await t.inject({ url: '/api/v1/sync?limit=0x10', headers: alice.headers }), 400).errors[0].path).toBe('query.limit')
    })

    it('takes plain digits', async () => {
      expect((await t.inject({ url: '/api/v1/tasks?limit=05', headers: alice.headers })).statusCode).toBe(200)
    })
  })

  describe('cursors', () => {
    it.each([
      ['500 emoji', '😀'.repeat(500)],
      ['500 control characters (six bytes of JSON each)', '\u0001'.repeat(499) + 'x'],
      ['500 quotes and backslashes', '"\\'.repeat(250)],
    ])('accepts back every cursor it hands out: titles of %s, sorted by title', async (_, title) => {
      const owner = await t.signUp()
      for (let i = 0; i < 3; i++) await t.createTask(owner, { title: `${[...title].slice(0, -1).join('')}${i}` })
      for (const sort of ['title', '-title']) {
        const first = await t.inject({ url: `/api/v1/tasks?sort=${sort}&limit=1`, headers: owner.headers })
        const { nextCursor } = first.json()
        expect(nextCursor).toEqual(expect.any(String))
        const next = await t.inject({ url: `/api/v1/tasks?sort=${sort}&limit=1&cursor=${nextCursor}`, headers: owner.headers })
        expect(next.statusCode).toBe(200)
        expect(next.json().items).toHaveLength(1)
      }
    })
  })

  it('takes a classic {user_id} of up to 255 characters (not a 414)', async () => {
    const res = await t.inject({ url: `/api/${'u'.repeat(255)}/tasks`, headers: alice.headers })
    expectProblem(res, 403) // someone else's id: refused as such, not as too long
  })
})
