import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, expectProblem, testDatabases, type Account, type TestApp } from '../helpers.js'

const PRECONDITION_FAILED = 'urn:problem-type:taskbase:precondition-failed'
const STRONG_ETAG = /^"[^"]+"$/

describe.each(testDatabases)('task ETags and conditional requests on $name', (target) => {
  let t: TestApp
  let alice: Account
  let mallory: Account

  const url = (id: string) => `/api/v1/tasks/${id}`
  const get = (id: string, headers: Record<string, string> = {}) =>
    t.inject({ url: url(id), headers: { ...alice.headers, ...headers } })
  const patch = (id: string, payload: Record<string, unknown>, headers: Record<string, string> = {}) =>
    t.inject({ method: 'PATCH', url: url(id), headers: { ...alice.headers, ...headers }, payload })
  const del = (id: string, headers: Record<string, string> = {}) =>
    t.inject({ method: 'DELETE', url: url(id), headers: { ...alice.headers, ...headers } })
  /** A fresh task and the ETag its POST returned. */
  async function fresh (payload: Record<string, unknown> = { title: 'Conditional' }) {
    const res = await t.inject({ method: 'POST', url: '/api/v1/tasks', headers: alice.headers, payload })
    expect(res.statusCode).toBe(201)
    return { task: res.json(), etag: String(res.headers.etag) }
  }

  beforeAll(async () => {
    t = await buildTestApp(target)
    alice = await t.signUp()
    mallory = await t.signUp()
  })
  afterAll(() => t.close())

  describe('failures', () => {
    it('answers 412 to a PATCH with a stale If-Match, and changes nothing', async () => {
      const { task, etag: stale } = await fresh({ title: 'Original', priority: 'low' })
      const changed = await patch(task.id, { title: 'Changed once' }, { 'if-match': stale })
      expect(changed.statusCode).toBe(200)
      const before = await get(task.id)

      const res = await patch(task.id, { title: 'Lost update', priority: 'high', completed: true }, { 'if-match': stale })
      const problem = expectProblem(res, 412)
      expect(problem.type).toBe(PRECONDITION_FAILED)

      const after = await get(task.id)
      expect(after.json()).toEqual(before.json())
      expect(after.json()).toMatchObject({ title: 'Changed once', priority: 'low', completed: false, version: 2 })
      expect(after.headers.etag).toBe(before.headers.etag)
    })

    it.each([
      ['an unknown tag', '"not-the-etag"'],
      ['an unquoted tag', 'nope'],
      ['the weak form of the current tag (If-Match compares strongly)', 'W/current'],
      ['the tag of another task', 'other'],
      ['an empty list', ' , '],
    ])('answers 412 to a PATCH whose If-Match is %s', async (_, given) => {
      const { task, etag } = await fresh()
      const other = await fresh({ title: 'Other' })
      const ifMatch = given === 'W/current' ? `W/${etag}` : given === 'other' ? other.etag : given
      const problem = expectProblem(await patch(task.id, { title: 'Nope' }, { 'if-match': ifMatch }), 412)
      expect(problem.type).toBe(PRECONDITION_FAILED)
      expect((await get(task.id)).json()).toEqual(task)
    })

    it('answers 412 to a DELETE with a stale If-Match, and the task stays', async () => {
      const { task, etag: stale } = await fresh({ title: 'Keep me' })
      const changed = await patch(task.id, { completed: true })
      const problem = expectProblem(await del(task.id, { 'if-match': stale }), 412)
      expect(problem.type).toBe(PRECONDITION_FAILED)
      const after = await get(task.id)
      expect(after.statusCode).toBe(200)
      expect(after.json()).toEqual(changed.json())
      expectProblem(await del(task.id, { 'if-match': '"garbage"' }), 412)
      expect((await get(task.id)).statusCode).toBe(200)
    })

    it("answers 404, not 412 or 304, for another user's task whatever the precondition", async () => {
      const { task, etag } = await fresh({ title: 'Private' })
      const headers = mallory.headers
      expectProblem(await t.inject({ url: url(task.id), headers: { ...headers, 'if-none-match': etag } }), 404)
      expectProblem(await t.inject({ method: 'PATCH', url: url(task.id), headers: { ...headers, 'if-match': etag }, payload: { title: 'x' } }), 404)
      expectProblem(await t.inject({ method: 'PATCH', url: url(task.id), headers: { ...headers, 'if-match': '"stale"' }, payload: { title: 'x' } }), 404)
      expectProblem(await t.inject({ method: 'DELETE', url: url(task.id), headers: { ...headers, 'if-match': etag } }), 404)
      expect((await get(task.id)).json()).toEqual(task)
    })
  })

  describe('ETag and version', () => {
    it('returns the same strong ETag from POST and GET, and a new one with each version', async () => {
      const { task, etag } = await fresh({ title: 'Versioned' })
      expect(etag).toMatch(STRONG_ETAG)
      expect(task.version).toBe(1)
      const read = await get(task.id)
      expect(read.headers.etag).toBe(etag)

      const seen = new Set([etag])
      let version = 1
      let current = etag
      for (const change of [
        { title: 'Versioned, renamed' }, { priority: 'medium' }, { dueAt: '2030-06-01T12:00:00+02:00' }, { tags: ['A', 'b'] },
        { completed: true }, { description: 'now described' }, { dueAt: null }, { completed: false },
      ]) {
        const res = await patch(task.id, change)
        expect(res.statusCode).toBe(200)
        version++
        expect(res.json().version).toBe(version)
        expect(res.headers.etag).toMatch(STRONG_ETAG)
        expect(seen.has(String(res.headers.etag))).toBe(false)
        seen.add(String(res.headers.etag))
        const reread = await get(task.id)
        expect(reread.headers.etag).toBe(res.headers.etag)
        expect(reread.json()).toEqual(res.json())
        current = String(res.headers.etag)
      }
      expect((await get(task.id)).json()).toMatchObject({
        version: 9, title: 'Versioned, renamed', priority: 'medium', dueAt: null, tags: ['A', 'b'], description: 'now described', completed: false,
      })
      expect((await get(task.id, { 'if-none-match': current })).statusCode).toBe(304)
    })

    it('gives two tasks at the same version different ETags', async () => {
      const one = await fresh({ title: 'Same' })
      const two = await fresh({ title: 'Same' })
      expect(one.task.version).toBe(two.task.version)
      expect(one.etag).not.toBe(two.etag)
    })
  })

  describe('If-Match', () => {
    it('lets a PATCH through with the current ETag, *, or a list naming the current one', async () => {
      const { task, etag } = await fresh({ title: 'Guarded' })
      const first = await patch(task.id, { title: 'Guarded 2' }, { 'if-match': etag })
      expect(first.statusCode).toBe(200)
      expect(first.json()).toMatchObject({ title: 'Guarded 2', version: 2 })

      const second = await patch(task.id, { priority: 'high' }, { 'if-match': '*' })
      expect(second.statusCode).toBe(200)
      expect(second.json()).toMatchObject({ priority: 'high', version: 3 })

      const third = await patch(task.id, { completed: true }, { 'if-match': `"old", ${String(second.headers.etag)}` })
      expect(third.statusCode).toBe(200)
      expect(third.json()).toMatchObject({ completed: true, version: 4 })

      expectProblem(await patch(task.id, { completed: false }, { 'if-match': String(second.headers.etag) }), 412)
    })

    it('lets a DELETE through with the current ETag or *', async () => {
      const one = await fresh({ title: 'Delete by tag' })
      const updated = await patch(one.task.id, { title: 'Delete by new tag' })
      const res = await del(one.task.id, { 'if-match': String(updated.headers.etag) })
      expect(res.statusCode).toBe(204)
      expectProblem(await get(one.task.id), 404)

      const two = await fresh({ title: 'Delete by star' })
      expect((await del(two.task.id, { 'if-match': '*' })).statusCode).toBe(204)
      expectProblem(await get(two.task.id), 404)
      expectProblem(await del(two.task.id, { 'if-match': '*' }), 404)
    })

    it('lets exactly one of two concurrent PATCHes with the same If-Match win', async () => {
      for (let round = 0; round < 5; round++) {
        const { task, etag } = await fresh({ title: `Race ${round}` })
        const [a, b] = await Promise.all([
          patch(task.id, { title: `A wins ${round}`, priority: 'low' }, { 'if-match': etag }),
          patch(task.id, { title: `B wins ${round}`, priority: 'high' }, { 'if-match': etag }),
        ])
        expect([a!.statusCode, b!.statusCode].sort()).toEqual([200, 412])
        const [winner, loser] = a!.statusCode === 200 ? [a!, b!] : [b!, a!]
        expect(expectProblem(loser, 412).type).toBe(PRECONDITION_FAILED)
        const after = await get(task.id)
        expect(after.json()).toEqual(winner.json())
        expect(after.json().version).toBe(2)
        expect(after.headers.etag).toBe(winner.headers.etag)
      }
    })

    it('lets exactly one of several concurrent PATCHes with the same If-Match win', async () => {
      const { task, etag } = await fresh({ title: 'Crowd' })
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) =>
        patch(task.id, { title: `Crowd ${i}` }, { 'if-match': etag })))
      expect(results.filter((r) => r.statusCode === 200)).toHaveLength(1)
      expect(results.filter((r) => r.statusCode === 412)).toHaveLength(5)
      expect((await get(task.id)).json().version).toBe(2)
    })
  })

  describe('If-None-Match', () => {
    it('answers 304 while unchanged and 200 after a change', async () => {
      const { task, etag } = await fresh({ title: 'Cached' })
      const notModified = await get(task.id, { 'if-none-match': etag })
      expect(notModified.statusCode).toBe(304)
      expect(notModified.body).toBe('')
      expect(notModified.headers.etag).toBe(etag)

      const weak = await get(task.id, { 'if-none-match': `W/${etag}` })
      expect(weak.statusCode).toBe(304)
      expect(weak.body).toBe('')

      expect((await get(task.id, { 'if-none-match': `"something-else", ${etag}` })).statusCode).toBe(304)
      expect((await get(task.id, { 'if-none-match': '*' })).statusCode).toBe(304)

      const other = await get(task.id, { 'if-none-match': '"something-else"' })
      expect(other.statusCode).toBe(200)
      expect(other.json()).toEqual(task)

      const changed = await patch(task.id, { title: 'Cached, changed' })
      const fresher = await get(task.id, { 'if-none-match': etag })
      expect(fresher.statusCode).toBe(200)
      expect(fresher.json()).toEqual(changed.json())
      expect(fresher.headers.etag).toBe(changed.headers.etag)
      expect(fresher.headers.etag).not.toBe(etag)
      expect((await get(task.id, { 'if-none-match': `W/${etag}` })).statusCode).toBe(200)
      expect((await get(task.id, { 'if-none-match': String(changed.headers.etag) })).statusCode).toBe(304)
    })
  })
})
