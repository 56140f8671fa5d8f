import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { statement } from '../../src/db/sql.js'
import { asStream, get, json, portOf } from '../events/sse.js'
import { buildTestApp, expectProblem, testDatabases, type Account, type TestApp } from '../helpers.js'
import { api, etagOf, expectProblemAt, type Json } from '../resources.js'

// Completing an occurrence moves a task on from "now", so these tests use dates after the day they
// run: YEAR is two years ahead. Its DST change days come from the zones' published rules by plain
// calendar arithmetic (no time-zone data, nothing of the code under test), checked against the
// 2026 dates written out in recurrence.test.ts.
const YEAR = new Date().getUTCFullYear() + 2
const DAY = 86_400_000

/** The day of month of the n-th Sunday of `month` (1-12) in `year`; n = -1: the last one. */
function sunday (year: number, month: number, n: number): number {
  if (n > 0) return 1 + (7 - new Date(Date.UTC(year, month - 1, 1)).getUTCDay()) % 7 + 7 * (n - 1)
  const last = new Date(Date.UTC(year, month, 0))
  return last.getUTCDate() - last.getUTCDay()
}

/** The UTC instant as the API writes it; days past the month's end roll over (Date.UTC arithmetic). */
const utc = (year: number, month: number, day: number, hour: number, minute = 0) =>
  new Date(Date.UTC(year, month - 1, day, hour, minute)).toISOString()

/** The first `hour`:00 UTC strictly after `ms`. */
const nextUtcHour = (ms: number, hour: number) => {
  const day = Math.floor(ms / DAY) * DAY
  const today = day + hour * 3_600_000
  return new Date(today > ms ? today : today + DAY).toISOString()
}

describe('the DST change days the completion tests use', () => {
  it('are the 2026 ones written out by hand for 2026', () => {
    expect([sunday(2026, 3, -1), sunday(2026, 10, -1)]).toEqual([29, 25]) // Europe/Berlin
    expect([sunday(2026, 3, 2), sunday(2026, 11, 1)]).toEqual([8, 1]) // America/New_York
  })
})

describe.each(testDatabases)('recurring tasks: completing occurrences, on $name', (target) => {
  let t: TestApp
  let a: ReturnType<typeof api>
  let owner: Account
  beforeAll(async () => {
    t = await buildTestApp(target)
    a = api(t)
    owner = await t.signUp()
  })
  afterAll(() => t.close())

  const send = (account: Account, method: 'GET' | 'POST' | 'PATCH' | 'PUT', url: string, payload?: Json, headers: Record<string, string> = {}) =>
    t.inject({ method, url, headers: { ...account.headers, ...headers }, ...(payload && { payload }) })
  const complete = async (account: Account, id: string, headers: Record<string, string> = {}): Promise<Json> => {
    const res = await send(account, 'PATCH', `/api/v1/tasks/${id}`, { completed: true }, headers)
    if (res.statusCode !== 200) throw new Error(`complete: ${res.statusCode} ${res.body}`)
    expect(res.headers.etag).toBe(etagOf(res.json()))
    return res.json()
  }
  const history = async (account: Account, id: string, query = ''): Promise<Json> => {
    const res = await send(account, 'GET', `/api/v1/tasks/${id}/completions${query}`)
    if (res.statusCode !== 200) throw new Error(`history: ${res.statusCode} ${res.body}`)
    return res.json()
  }
  const recurring = (dueAt: string, rule: string, timezone = 'UTC', from?: 'due' | 'completion') =>
    a.createTask(owner, { title: `${rule} ${timezone}`, dueAt, recurrence: { rule, timezone, ...(from && { from }) } })

  /** Completes `task` once per expected date, each time checking where it moved. */
  const chain = async (task: Json, expected: string[]) => {
    const seen = []
    for (let i = 0; i < expected.length; i++) seen.push((await complete(owner, task.id)).dueAt)
    expect(seen).toEqual(expected)
  }

  it('records the occurrence, moves dueAt to the next one, leaves the task open and bumps its version', async () => {
    const dueAt = utc(YEAR, 5, 3, 9)
    const task = await recurring(dueAt, 'FREQ=WEEKLY')
    const before = Date.now()
    const done = await complete(owner, task.id)
    expect(done).toMatchObject({ completed: false, completedAt: null, dueAt: utc(YEAR, 5, 10, 9), version: task.version + 1, recurrence: task.recurrence })
    expect(await a.readTask(owner, task.id)).toEqual(done)
    const { items, nextCursor } = await history(owner, task.id)
    expect(items).toEqual([{ occurrence: dueAt, completedAt: expect.any(String) }])
    expect(Date.parse(items[0].completedAt)).toBeGreaterThanOrEqual(before - 1000)
    expect(Date.parse(items[0].completedAt)).toBeLessThanOrEqual(Date.now() + 1000)
    expect(nextCursor).toBeNull()
    // A task that does not repeat has no history; its completion is the plain one.
    const plain = await a.createTask(owner, { title: 'Once', dueAt })
    expect(await complete(owner, plain.id)).toMatchObject({ completed: true, dueAt })
    expect(await history(owner, plain.id)).toEqual({ items: [], nextCursor: null })
  })

  it('keeps 09:00 in Berlin and New York through the DST changes as each occurrence is completed', async () => {
    const spring = sunday(YEAR, 3, -1)
    // Saturday 09:00 CET, Sunday 09:00 CEST, Monday 09:00 CEST.
    await chain(await recurring(utc(YEAR, 3, spring - 1, 8), 'FREQ=DAILY', 'Europe/Berlin'), [utc(YEAR, 3, spring, 7), utc(YEAR, 3, spring + 1, 7)])
    // 02:30 on the day of the change does not exist: 03:30 CEST; 02:30 again the day after, not 03:30.
    await chain(await recurring(utc(YEAR, 3, spring - 1, 1, 30), 'FREQ=DAILY', 'Europe/Berlin'),
      [utc(YEAR, 3, spring, 1, 30), utc(YEAR, 3, spring + 1, 0, 30), utc(YEAR, 3, spring + 2, 0, 30)])
    const autumn = sunday(YEAR, 10, -1)
    await chain(await recurring(utc(YEAR, 10, autumn - 1, 7), 'FREQ=DAILY', 'Europe/Berlin'), [utc(YEAR, 10, autumn, 8), utc(YEAR, 10, autumn + 1, 8)])
    const usSpring = sunday(YEAR, 3, 2)
    await chain(await recurring(utc(YEAR, 3, usSpring - 1, 14), 'FREQ=DAILY', 'America/New_York'),
      [utc(YEAR, 3, usSpring, 13), utc(YEAR, 3, usSpring + 1, 13)])
    // 01:30 on the first Sunday of November happens twice: the first (EDT) is the occurrence.
    const usAutumn = sunday(YEAR, 11, 1)
    await chain(await recurring(utc(YEAR, 11, usAutumn - 1, 5, 30), 'FREQ=DAILY', 'America/New_York'),
      [utc(YEAR, 11, usAutumn, 5, 30), utc(YEAR, 11, usAutumn + 1, 6, 30)])
    // Asia/Tokyo has no DST: 09:00 JST is 00:00 UTC on every one of those days.
    await chain(await recurring(utc(YEAR, 3, spring - 1, 0), 'FREQ=DAILY', 'Asia/Tokyo'), [utc(YEAR, 3, spring, 0), utc(YEAR, 3, spring + 1, 0)])
  })

  it('moves an overdue task to the first occurrence after now, once, not once per missed day', async () => {
    const task = await recurring('2026-01-01T09:00:00.000Z', 'FREQ=DAILY')
    const before = Date.now()
    const done = await complete(owner, task.id)
    const after = Date.now()
    // The first 09:00 UTC after the moment the server completed it (between `before` and `after`).
    expect([nextUtcHour(before, 9), nextUtcHour(after, 9)]).toContain(done.dueAt)
    expect((await history(owner, task.id)).items.map((c: Json) => c.occurrence)).toEqual(['2026-01-01T09:00:00.000Z'])
  })

  it('with from: "completion", counts from the day it was completed, in the series\' zone', async () => {
    for (const [timezone, hourUtc, offsetHours] of [['UTC', 9, 0], ['Asia/Tokyo', 0, 9]] as const) {
      // Due two years ahead, completed today: the next is three days after today, not after the dueAt.
      const task = await recurring(utc(YEAR, 6, 1, hourUtc), 'FREQ=DAILY;INTERVAL=3', timezone, 'completion')
      const done = await complete(owner, task.id)
      const completedAt = Date.parse((await history(owner, task.id)).items[0].completedAt)
      const today = new Date(completedAt + offsetHours * 3_600_000) // the date in the zone
      expect(done.dueAt).toBe(utc(today.getUTCFullYear(), today.getUTCMonth() + 1, today.getUTCDate() + 3, hourUtc))
      expect(done.recurrence.from).toBe('completion')
    }
  })

  it('completes for good when COUNT is used up, keeping the last dueAt', async () => {
    const first = utc(YEAR, 4, 5, 16)
    const task = await recurring(first, 'FREQ=WEEKLY;COUNT=3')
    await chain(task, [utc(YEAR, 4, 12, 16), utc(YEAR, 4, 19, 16)])
    const last = await complete(owner, task.id)
    expect(last).toMatchObject({ completed: true, dueAt: utc(YEAR, 4, 19, 16), recurrence: task.recurrence })
    expect(last.completedAt).toEqual(expect.any(String))
    expect((await history(owner, task.id)).items.map((c: Json) => c.occurrence)).toEqual([utc(YEAR, 4, 19, 16), utc(YEAR, 4, 12, 16), first])
    // Completing it again changes nothing and records nothing.
    expect((await complete(owner, task.id)).completedAt).toBe(last.completedAt)
    expect((await history(owner, task.id)).items).toHaveLength(3)
    expect((await send(owner, 'GET', `/api/v1/tasks/${task.id}/occurrences`)).json()).toEqual({ items: [] })
  })

  it('completes for good when UNTIL is passed', async () => {
    const task = await recurring(utc(YEAR, 8, 30, 22), `FREQ=DAILY;UNTIL=${YEAR}0831`, 'UTC')
    await chain(task, [utc(YEAR, 8, 31, 22)])
    expect(await complete(owner, task.id)).toMatchObject({ completed: true, dueAt: utc(YEAR, 8, 31, 22) })
  })

  it('keeps the history through 10 completions, newest first, in pages, and deletes it with the task', async () => {
    const task = await recurring(utc(YEAR, 2, 1, 12), 'FREQ=DAILY')
    for (let i = 0; i < 10; i++) await complete(owner, task.id)
    const pages: Json[] = []
    let cursor: string | null = null
    do {
      pages.push(await history(owner, task.id, `?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`))
      cursor = pages.at(-1)!.nextCursor
    } while (cursor !== null && pages.length < 10)
    expect(pages.map((p) => p.items.length)).toEqual([3, 3, 3, 1])
    const items = pages.flatMap((p) => p.items)
    expect(items.map((c) => c.occurrence)).toEqual(Array.from({ length: 10 }, (_, i) => utc(YEAR, 2, 10 - i, 12)))
    const times = items.map((c) => Date.parse(c.completedAt))
    expect(times).toEqual([...times].sort((x, y) => y - x))
    expect((await history(owner, task.id, '?limit=100')).items).toEqual(items)

    expect((await send(owner, 'GET', `/api/v1/tasks/${task.id}`)).statusCode).toBe(200)
    expect((await t.inject({ method: 'DELETE', url: `/api/v1/tasks/${task.id}`, headers: owner.headers })).statusCode).toBe(204)
    expectProblem(await send(owner, 'GET', `/api/v1/tasks/${task.id}/completions`), 404)
    const [left] = await t.database.query<{ n: number }>(statement('select count(*)::int as n from task_completions where task_id = $1'), [task.id])
    expect(left!.n).toBe(0)
  })

  it('reopens the completed subtasks for the next occurrence, and completes them when the series ends', async () => {
    const parent = await recurring(utc(YEAR, 3, 2, 8), 'FREQ=WEEKLY;COUNT=2')
    const done = await a.createTask(owner, { title: 'done child', parentId: parent.id })
    const grandchild = await a.createTask(owner, { title: 'grandchild', parentId: done.id })
    const open = await a.createTask(owner, { title: 'open child', parentId: parent.id })
    await complete(owner, done.id) // completes the grandchild with it
    const [doneBefore, grandchildBefore] = [await a.readTask(owner, done.id), await a.readTask(owner, grandchild.id)]
    expect(grandchildBefore.completed).toBe(true)

    expect(await complete(owner, parent.id)).toMatchObject({ completed: false, dueAt: utc(YEAR, 3, 9, 8) })
    for (const [child, before] of [[done, doneBefore], [grandchild, grandchildBefore]] as const) {
      expect(await a.readTask(owner, child.id)).toMatchObject({ completed: false, completedAt: null, version: before.version + 1 })
    }
    expect(await a.readTask(owner, open.id)).toEqual(open) // open: untouched

    expect(await complete(owner, parent.id)).toMatchObject({ completed: true, dueAt: utc(YEAR, 3, 9, 8) })
    for (const child of [done, grandchild, open]) expect((await a.readTask(owner, child.id)).completed).toBe(true)
  })

  it('with If-Match, completes only the occurrence the client saw: a stale ETag is a 412 and nothing changes', async () => {
    const task = await recurring(utc(YEAR, 7, 1, 9), 'FREQ=DAILY')
    const seen = etagOf(task)
    const moved = await complete(owner, task.id, { 'if-match': seen })
    expect(moved.dueAt).toBe(utc(YEAR, 7, 2, 9))
    const stale = await send(owner, 'PATCH', `/api/v1/tasks/${task.id}`, { completed: true }, { 'if-match': seen })
    expect(expectProblem(stale, 412).type).toBe('urn:problem-type:taskbase:precondition-failed')
    expect(await a.readTask(owner, task.id)).toEqual(moved)
    expect((await history(owner, task.id)).items).toHaveLength(1)
  })

  it('skips to the next occurrence without recording a completion; refuses a task with nothing to skip', async () => {
    const task = await recurring(utc(YEAR, 9, 7, 6), 'FREQ=WEEKLY;COUNT=2')
    const sub = await a.createTask(owner, { title: 'sub', parentId: task.id })
    await complete(owner, sub.id)
    const stale = await send(owner, 'POST', `/api/v1/tasks/${task.id}/skip`, undefined, { 'if-match': '"99-00000000"' })
    expectProblem(stale, 412)
    const skipped = await send(owner, 'POST', `/api/v1/tasks/${task.id}/skip`, undefined, { 'if-match': etagOf(task) })
    expect(skipped.statusCode).toBe(200)
    expect(skipped.json()).toMatchObject({ completed: false, dueAt: utc(YEAR, 9, 14, 6), version: task.version + 1 })
    expect(skipped.headers.etag).toBe(etagOf(skipped.json()))
    expect((await a.readTask(owner, sub.id)).completed).toBe(false)
    expect((await history(owner, task.id)).items).toEqual([])
    // The last occurrence skipped: the series is over.
    expect((await send(owner, 'POST', `/api/v1/tasks/${task.id}/skip`)).json()).toMatchObject({ completed: true, dueAt: utc(YEAR, 9, 14, 6) })
    expect((await history(owner, task.id)).items).toEqual([])
    for (const id of [task.id, (await a.createTask(owner, { title: 'once', dueAt: utc(YEAR, 1, 1, 0) })).id]) {
      expect(expectProblem(await send(owner, 'POST', `/api/v1/tasks/${id}/skip`), 409).type).toBe('urn:problem-type:taskbase:not-repeating')
    }
  })

  it('recomputes nothing when the series or dueAt is edited: the next occurrence follows from the new values', async () => {
    const task = await recurring(utc(YEAR, 1, 4, 9), 'FREQ=WEEKLY;COUNT=3')
    expect((await complete(owner, task.id)).dueAt).toBe(utc(YEAR, 1, 11, 9))
    // Moved a day and an hour later: the history stays, the series goes on from there.
    const moved = await a.patchTask(owner, task.id, { dueAt: utc(YEAR, 1, 12, 10) })
    expect(moved.recurrence).toEqual(task.recurrence)
    expect((await history(owner, task.id)).items.map((c: Json) => c.occurrence)).toEqual([utc(YEAR, 1, 4, 9)])
    expect((await complete(owner, task.id)).dueAt).toBe(utc(YEAR, 1, 19, 10))
    // The same series sent back (a client writing what it read) keeps its count: this was the third.
    await a.patchTask(owner, task.id, { recurrence: task.recurrence })
    expect(await complete(owner, task.id)).toMatchObject({ completed: true, dueAt: utc(YEAR, 1, 19, 10) })
    // A changed series starts anew from the current dueAt.
    await a.patchTask(owner, task.id, { completed: false, recurrence: { ...task.recurrence, rule: 'FREQ=WEEKLY;COUNT=2' } })
    expect(await complete(owner, task.id)).toMatchObject({ completed: false, dueAt: utc(YEAR, 1, 26, 10) })
    expect((await history(owner, task.id)).items).toHaveLength(4)
  })

  it('puts each advance in sync and on the event streams, with the reopened subtasks', async () => {
    await t.app.listen({ port: 0, host: '127.0.0.1' })
    const watcher = await t.signUp()
    const task = await a.createTask(watcher, { title: 'Standup', dueAt: utc(YEAR, 10, 5, 7), recurrence: { rule: 'FREQ=DAILY;INTERVAL=3', timezone: 'UTC' } })
    const sub = await a.createTask(watcher, { title: 'notes', parentId: task.id })
    await complete(watcher, sub.id)
    const { cursor } = await a.syncAll(watcher)
    const stream = asStream(await get(portOf(t.app), `/api/v1/events?since=${encodeURIComponent(cursor)}`, watcher.headers))
    let since = cursor
    for (const expected of [utc(YEAR, 10, 8, 7), utc(YEAR, 10, 11, 7)]) {
      const advanced = await complete(watcher, task.id)
      expect(advanced.dueAt).toBe(expected)
      const page = await a.syncAll(watcher, since)
      since = page.cursor
      const upserts = page.changes.filter((c) => c.op === 'upsert').map((c) => c.task)
      expect(upserts.find((x) => x.id === task.id)).toEqual(advanced)
      const events = (await stream.nextEvents(expected === utc(YEAR, 10, 8, 7) ? 2 : 1)).map(json)
      expect(events.find((e) => e.id === task.id)).toEqual(advanced)
      if (expected === utc(YEAR, 10, 8, 7)) {
        // The first advance reopened the completed subtask: that change came with it.
        expect(upserts.find((x) => x.id === sub.id)).toMatchObject({ completed: false })
        expect(events.find((e) => e.id === sub.id)).toMatchObject({ completed: false })
      }
    }
    stream.close()
  })

  describe('through the classic routes', () => {
    const classic = (account: Account, method: 'GET' | 'POST' | 'PUT' | 'PATCH', path: string, payload?: Json) =>
      send(account, method, `/api/${account.id}/tasks${path}`, payload)

    it('creates one with recurrence, returns it, and a PUT that omits it keeps the series and the due date', async () => {
      const created = await classic(owner, 'POST', '', { title: 'Bins out', due_date: utc(YEAR, 3, 3, 18), recurrence: { rule: 'FREQ=WEEKLY', timezone: 'Europe/London' } })
      expect(created.statusCode).toBe(201)
      const task = created.json()
      expect(task).toMatchObject({ due_date: utc(YEAR, 3, 3, 18), recurrence: { rule: 'FREQ=WEEKLY', timezone: 'Europe/London', from: 'due' } })
      expect((await classic(owner, 'GET', `/${task.id}`)).json()).toEqual(task)
      // A front end that knows neither recurrence nor due dates replaces the title: the series goes on.
      const renamed = await classic(owner, 'PUT', `/${task.id}`, { title: 'Put the bins out' })
      expect(renamed.json()).toMatchObject({ title: 'Put the bins out', due_date: utc(YEAR, 3, 3, 18), completed: false, recurrence: task.recurrence })
    })

    it('completes the current occurrence with a PUT (whatever due_date it sends) and with the toggle', async () => {
      const task = (await classic(owner, 'POST', '', { title: 'Stretch', due_date: utc(YEAR, 5, 1, 6), recurrence: { rule: 'FREQ=DAILY', timezone: 'UTC' } })).json()
      const put = await classic(owner, 'PUT', `/${task.id}`, { title: 'Stretch', completed: true, due_date: utc(YEAR, 5, 1, 6) })
      expect(put.json()).toMatchObject({ completed: false, due_date: utc(YEAR, 5, 2, 6) })
      // A stale client sending the due date it read completes the occurrence that is current now.
      const stale = await classic(owner, 'PUT', `/${task.id}`, { title: 'Stretch', completed: true, due_date: utc(YEAR, 5, 1, 6) })
      expect(stale.json()).toMatchObject({ completed: false, due_date: utc(YEAR, 5, 3, 6) })
      const toggled = await classic(owner, 'PATCH', `/${task.id}/complete`)
      expect(toggled.json()).toMatchObject({ completed: false, due_date: utc(YEAR, 5, 4, 6) })
      expect((await history(owner, task.id)).items.map((c: Json) => c.occurrence)).toEqual([utc(YEAR, 5, 3, 6), utc(YEAR, 5, 2, 6), utc(YEAR, 5, 1, 6)])
    })

    it('refuses a due_date of null on a recurring task with a 422 naming body.due_date; recurrence: null stops the series', async () => {
      const task = (await classic(owner, 'POST', '', { title: 'Pay rent', due_date: utc(YEAR, 1, 1, 9), recurrence: { rule: 'FREQ=MONTHLY', timezone: 'UTC' } })).json()
      expect(expectProblemAt(await classic(owner, 'PUT', `/${task.id}`, { title: 'Pay rent', due_date: null }), 422, 'body.due_date').detail).not.toMatch(/dueAt/)
      expectProblemAt(await classic(owner, 'PUT', `/${task.id}`, { title: 'Pay rent', recurrence: { rule: 'FREQ=HOURLY' } }), 422, 'body.recurrence.rule')
      expect((await classic(owner, 'GET', `/${task.id}`)).json()).toEqual(task)
      const stopped = await classic(owner, 'PUT', `/${task.id}`, { title: 'Pay rent', recurrence: null })
      expect(stopped.json()).toMatchObject({ recurrence: null, due_date: null })
    })
  })
})
