import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, expectProblem, testDatabases, type Account, type TestApp } from '../helpers.js'

/**
 * Every time a client sends comes back exactly (to the millisecond), or is refused with a 400 naming
 * the field; no stored value can make a read fail. Years 0001-0099 were read back through
 * `new Date(<PostgreSQL text>)` as 19xx/20xx or as an invalid date, which then broke every list and
 * sync of the account (issue 11).
 */
describe.each(testDatabases)('due dates on $name', (target) => {
  let t: TestApp
  let alice: Account
  beforeAll(async () => {
    t = await buildTestApp(target)
    alice = await t.signUp()
  })
  afterAll(() => t.close())

  const create = (dueAt: string) => t.inject({ method: 'POST', url: '/api/v1/tasks', headers: alice.headers, payload: { title: 'Dated', dueAt } })

  it.each([
    ['0016-10-15T04:14:14Z', '0016-10-15T04:14:14.000Z'],
    ['0012-06-01T00:00:00Z', '0012-06-01T00:00:00.000Z'],
    ['0050-10-15T00:00:00.5Z', '0050-10-15T00:00:00.500Z'],
    ['0001-01-01T00:00:00Z', '0001-01-01T00:00:00.000Z'],
    ['9999-12-31T23:59:59.999Z', '9999-12-31T23:59:59.999Z'],
    ['2026-12-01T17:00:00+05:30', '2026-12-01T11:30:00.000Z'],
    ['2026-12-01T17:00:00.123456Z', '2026-12-01T17:00:00.123Z'],
  ])('stores %s and gives back %s, in the task, the list and sync', async (sent, stored) => {
    const res = await create(sent)
    expect(res.statusCode).toBe(201)
    const task = res.json()
    expect(task.dueAt).toBe(stored)
    expect((await t.inject({ url: `/api/v1/tasks/${task.id}`, headers: alice.headers })).json().dueAt).toBe(stored)
    const list = await t.inject({ url: '/api/v1/tasks?sort=dueAt&limit=100', headers: alice.headers })
    expect(list.statusCode).toBe(200)
    expect(list.json().items.find((i: { id: string }) => i.id === task.id).dueAt).toBe(stored)
    const sync = await t.inject({ url: '/api/v1/sync', headers: alice.headers })
    expect(sync.statusCode).toBe(200)
    const patched = await t.inject({ method: 'PATCH', url: `/api/v1/tasks/${task.id}`, headers: alice.headers, payload: { dueAt: sent } })
    expect(patched.json().dueAt).toBe(stored)
  })

  it.each([
    ['a leap second', '2026-06-30T23:59:60Z', /leap second/],
    ['year 0000', '0000-06-01T00:00:00Z', /0001 to 9999/],
    ['an offset that pushes it before year 1', '0001-01-01T00:00:00+01:00', /0001 to 9999/],
    ['an offset that pushes it past 9999', '9999-12-31T23:30:00-01:00', /0001 to 9999/],
    ['rounding into year 10000', '9999-12-31T23:59:59.9999Z', null],
    ['no time zone', '2026-12-01T17:00:00', /time zone/],
    ['February 30th', '2026-02-30T10:00:00Z', /not a valid date/],
  ])('refuses %s with a 400 naming the field, on POST and PATCH, and stores nothing', async (_, value, detail) => {
    if (detail === null) { // truncated to the millisecond, never rounded up: this one is fine
      expect((await create(value)).statusCode).toBe(201)
      return
    }
    const before = (await t.inject({ url: '/api/v1/tasks?limit=100', headers: alice.headers })).json().items.length
    const body = expectProblem(await create(value), 400)
    expect(body.errors).toEqual([{ path: 'body.dueAt', message: expect.stringMatching(detail) }])
    const task = await t.createTask(alice, { title: 'Undated' })
    const patch = expectProblem(await t.inject({ method: 'PATCH', url: `/api/v1/tasks/${task.id}`, headers: alice.headers, payload: { dueAt: value } }), 400)
    expect(patch.errors[0].path).toBe('body.dueAt')
    expect((await t.inject({ url: '/api/v1/tasks?limit=100', headers: alice.headers })).json().items.length).toBe(before + 1)
  })

  it('refuses a leap second in dueBefore with a 400 naming the parameter', async () => {
    const body = expectProblem(await t.inject({ url: '/api/v1/tasks?dueBefore=2026-06-30T23:59:60Z', headers: alice.headers }), 400)
    expect(body.errors[0].path).toBe('query.dueBefore')
  })
})
