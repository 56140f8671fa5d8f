import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, expectProblem, testDatabases, type Account, type TestApp } from '../helpers.js'

const KEY_REUSED = 'urn:problem-type:taskbase:idempotency-key-reused'

describe.each(testDatabases)('POST /api/v1/tasks with Idempotency-Key on $name', (target) => {
  let t: TestApp
  let alice: Account

  const create = (account: Account, key: string | undefined, payload: Record<string, unknown> | string) =>
    t.inject({
      method: 'POST',
      url: '/api/v1/tasks',
      headers: {
        ...account.headers,
        ...(key === undefined ? {} : { 'idempotency-key': key }),
        ...(typeof payload === 'string' ? { 'content-type': 'application/json' } : {}),
      },
      payload,
    })
  const taskIds = async (account: Account): Promise<string[]> => {
    const res = await t.inject({ url: '/api/v1/tasks?limit=100', headers: account.headers })
    expect(res.statusCode).toBe(200)
    return res.json().items.map((task: { id: string }) => task.id)
  }

  beforeAll(async () => {
    t = await buildTestApp(target)
    alice = await t.signUp()
  })
  afterAll(() => t.close())

  describe('failures', () => {
    it('refuses a key of 256 characters, and stores nothing', async () => {
      const owner = await t.signUp()
      const problem = expectProblem(await create(owner, 'k'.repeat(256), { title: 'Too long a key' }), 400)
      expect(problem.errors.map((e: { path: string }) => e.path).join(' ')).toMatch(/idempotency-key/)
      expect(await taskIds(owner)).toEqual([])
    })

    it('refuses an empty key, and stores nothing', async () => {
      const owner = await t.signUp()
      expectProblem(await create(owner, '', { title: 'Empty key' }), 400)
      expect(await taskIds(owner)).toEqual([])
    })

    it('answers 422 when the key was used with a different body, and creates nothing more', async () => {
      const owner = await t.signUp()
      const first = await create(owner, 'reused-key', { title: 'Original', priority: 'low' })
      expect(first.statusCode).toBe(201)
      for (const other of [
        { title: 'Different' },
        { title: 'Original', priority: 'high' },
        { title: 'Original', priority: 'low', tags: [] },
        { title: 'Original', priority: 'low', description: null },
      ]) {
        const problem = expectProblem(await create(owner, 'reused-key', other), 422)
        expect(problem.type).toBe(KEY_REUSED)
      }
      expect(await taskIds(owner)).toEqual([first.json().id])
      // The first answer is still what a true retry gets.
      const retry = await create(owner, 'reused-key', { title: 'Original', priority: 'low' })
      expect(retry.statusCode).toBe(201)
      expect(retry.json().id).toBe(first.json().id)
    })

    it('does not let a refused body claim a key', async () => {
      const owner = await t.signUp()
      expectProblem(await create(owner, 'bad-then-good', { title: '   ' }), 400)
      const good = await create(owner, 'bad-then-good', { title: 'Good' })
      expect(good.statusCode).toBe(201)
      expect(good.headers['idempotent-replayed']).toBeUndefined()
      expect(await taskIds(owner)).toEqual([good.json().id])
    })
  })

  describe('replay', () => {
    it('creates once, then answers a retry with the same task and 201', async () => {
      const payload = { title: 'Pay rent', description: 'before the 5th', priority: 'high', dueAt: '2030-02-01T09:00:00+01:00', tags: ['Home', 'money'] }
      const first = await create(alice, 'rent-2030-02', payload)
      expect(first.statusCode).toBe(201)
      expect(first.headers['idempotent-replayed']).toBeUndefined()
      const task = first.json()
      expect(task).toMatchObject({ title: 'Pay rent', dueAt: '2030-02-01T08:00:00.000Z', tags: ['Home', 'money'], version: 1 })
      const countAfterFirst = (await taskIds(alice)).length

      for (let i = 0; i < 2; i++) {
        const retry = await create(alice, 'rent-2030-02', payload)
        expect(retry.statusCode).toBe(201)
        expect(retry.headers['idempotent-replayed']).toBe('true')
        expect(retry.json()).toEqual(task)
        expect(retry.headers.location).toBe(first.headers.location)
        expect(retry.headers.etag).toBe(first.headers.etag)
      }
      expect((await taskIds(alice)).length).toBe(countAfterFirst)
      expect((await t.inject({ url: `/api/v1/tasks/${task.id}`, headers: alice.headers })).json()).toEqual(task)
    })

    it('treats a body with its keys reordered as the same request', async () => {
      const owner = await t.signUp()
      const first = await create(owner, 'reordered', '{"title":"Reorder","priority":"medium","tags":["a","b"],"dueAt":"2030-01-01T00:00:00Z"}')
      expect(first.statusCode).toBe(201)
      const retry = await create(owner, 'reordered', '{"dueAt":"2030-01-01T00:00:00Z","tags":["a","b"],"priority":"medium","title":"Reorder"}')
      expect(retry.statusCode).toBe(201)
      expect(retry.headers['idempotent-replayed']).toBe('true')
      expect(retry.json().id).toBe(first.json().id)
      const spaced = await create(owner, 'reordered', '{ "priority": "medium",\n  "title": "Reorder", "dueAt": "2030-01-01T00:00:00Z", "tags": ["a", "b"] }')
      expect(spaced.statusCode).toBe(201)
      expect(spaced.json().id).toBe(first.json().id)
      expect(await taskIds(owner)).toEqual([first.json().id])
    })

    it('keeps keys per user: another user with the same key gets a new task', async () => {
      const bob = await t.signUp()
      const carol = await t.signUp()
      const payload = { title: 'Shared key' }
      const forBob = await create(bob, 'same-key', payload)
      const forCarol = await create(carol, 'same-key', payload)
      expect(forBob.statusCode).toBe(201)
      expect(forCarol.statusCode).toBe(201)
      expect(forCarol.headers['idempotent-replayed']).toBeUndefined()
      expect(forCarol.json().id).not.toBe(forBob.json().id)
      expect(await taskIds(bob)).toEqual([forBob.json().id])
      expect(await taskIds(carol)).toEqual([forCarol.json().id])
      // A different body under the same key is fine for the other user, too.
      const dave = await t.signUp()
      expect((await create(dave, 'same-key', { title: 'Something else' })).statusCode).toBe(201)
      expect(await taskIds(dave)).toHaveLength(1)
    })

    it('accepts a key of 255 characters; different keys or no key create separate tasks', async () => {
      const owner = await t.signUp()
      const long = await create(owner, 'k'.repeat(255), { title: 'Long key' })
      expect(long.statusCode).toBe(201)
      expect((await create(owner, 'k'.repeat(255), { title: 'Long key' })).json().id).toBe(long.json().id)
      const one = await create(owner, 'key-1', { title: 'Twice' })
      const two = await create(owner, 'key-2', { title: 'Twice' })
      expect(one.json().id).not.toBe(two.json().id)
      const three = await create(owner, undefined, { title: 'Twice' })
      const four = await create(owner, undefined, { title: 'Twice' })
      expect(three.json().id).not.toBe(four.json().id)
      expect(await taskIds(owner)).toHaveLength(5)
    })

    it('answers 10 racing identical requests with one task', async () => {
      const owner = await t.signUp()
      const payload = { title: 'Racing create', tags: ['race'] }
      const results = await Promise.all(Array.from({ length: 10 }, () => create(owner, 'race-key', payload)))
      expect(results.map((r) => r.statusCode)).toEqual(Array(10).fill(201))
      const created = new Set(results.map((r) => r.json().id))
      expect(created.size).toBe(1)
      expect(results.filter((r) => r.headers['idempotent-replayed'] === 'true')).toHaveLength(9)
      expect(await taskIds(owner)).toEqual([...created])
    })

    it('answers racing requests with one key but two bodies with one task: replays for its body, 422 for the other', async () => {
      const owner = await t.signUp()
      const bodies = [{ title: 'Racing body A' }, { title: 'Racing body B' }]
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => create(owner, 'split-key', bodies[i % 2]!)))
      const ok = results.filter((r) => r.statusCode === 201)
      const refused = results.filter((r) => r.statusCode !== 201)
      expect(ok).toHaveLength(4)
      for (const r of refused) expect(expectProblem(r, 422).type).toBe(KEY_REUSED)
      expect(new Set(ok.map((r) => r.json().id)).size).toBe(1)
      expect(new Set(ok.map((r) => r.json().title)).size).toBe(1)
      expect(await taskIds(owner)).toEqual([ok[0]!.json().id])
    })
  })
})
