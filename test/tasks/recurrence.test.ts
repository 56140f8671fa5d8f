import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, expectProblem, testDatabases, type Account, type TestApp } from '../helpers.js'
import { api, expectProblemAt, MISSING_ID, sameProblem, type Json } from '../resources.js'

// Every expected date below is written out by hand from a printed 2026 calendar and the zones'
// published rules, never computed by the code under test:
// - Europe/Berlin: CET (+01:00), CEST (+02:00) from 29 March 2026 02:00 to 25 October 2026 03:00.
// - America/New_York: EST (-05:00), EDT (-04:00) from 8 March 2026 02:00 to 1 November 2026 02:00.
// - Asia/Tokyo: JST (+09:00) all year, no DST.
// The last Fridays of 2026: Jan 30, Feb 27, Mar 27, Apr 24, May 29, Jun 26, Jul 31, Aug 28, Sep 25,
// Oct 30, Nov 27, Dec 25.

describe.each(testDatabases)('recurring tasks: the field and the schedule, on $name', (target) => {
  let t: TestApp
  let a: ReturnType<typeof api>
  let alice: Account
  beforeAll(async () => {
    t = await buildTestApp(target)
    a = api(t)
    alice = await t.signUp()
  })
  afterAll(() => t.close())

  const post = (account: Account, payload: Json) => t.inject({ method: 'POST', url: '/api/v1/tasks', headers: account.headers, payload })
  const patch = (account: Account, id: string, payload: Json) =>
    t.inject({ method: 'PATCH', url: `/api/v1/tasks/${id}`, headers: account.headers, payload })
  const occurrences = async (account: Account, id: string, limit: number): Promise<string[]> => {
    const res = await t.inject({ url: `/api/v1/tasks/${id}/occurrences?limit=${limit}`, headers: account.headers })
    if (res.statusCode !== 200) throw new Error(`occurrences: ${res.statusCode} ${res.body}`)
    return res.json().items.map((item: { dueAt: string }) => item.dueAt)
  }
  /** A recurring task's first `limit` due dates, from a dueAt given as local time with its offset. */
  const schedule = async (dueAt: string, rule: string, timezone: string, limit: number) => {
    const task = await a.createTask(alice, { title: rule, dueAt, recurrence: { rule, timezone } })
    return occurrences(alice, task.id, limit)
  }

  describe('refusals: a 400 naming the field and saying why, and nothing stored', () => {
    const recurring = (recurrence: Json, dueAt: string | null = '2027-01-04T09:00:00Z') => ({ title: 'x', dueAt, recurrence })

    it.each([
      ['HOURLY', { rule: 'FREQ=HOURLY' }, 'body.recurrence.rule', /at most daily/],
      ['MINUTELY', { rule: 'FREQ=MINUTELY;INTERVAL=30' }, 'body.recurrence.rule', /at most daily/],
      ['no FREQ', { rule: 'BYDAY=MO' }, 'body.recurrence.rule', /must have a FREQ/],
      ['an unknown FREQ', { rule: 'FREQ=FORTNIGHTLY' }, 'body.recurrence.rule', /FREQ=DAILY, WEEKLY, MONTHLY or YEARLY/],
      ['COUNT and UNTIL together', { rule: 'FREQ=DAILY;COUNT=3;UNTIL=20270301T000000Z' }, 'body.recurrence.rule', /COUNT or UNTIL, not both/],
      ['BYHOUR', { rule: 'FREQ=DAILY;BYHOUR=9' }, 'body.recurrence.rule', /time of day comes from dueAt/],
      ['an unknown part', { rule: 'FREQ=DAILY;BYEASTER=1' }, 'body.recurrence.rule', /may not have BYEASTER/],
      ['a part named twice', { rule: 'FREQ=DAILY;INTERVAL=2;INTERVAL=3' }, 'body.recurrence.rule', /names INTERVAL twice/],
      ['a malformed rule', { rule: 'every monday' }, 'body.recurrence.rule', /NAME=VALUE parts/],
      ['the RRULE: prefix', { rule: 'RRULE:FREQ=DAILY' }, 'body.recurrence.rule', /without RRULE:/],
      ['INTERVAL=0', { rule: 'FREQ=DAILY;INTERVAL=0' }, 'body.recurrence.rule', /INTERVAL from 1 to 1000/],
      ['COUNT=0', { rule: 'FREQ=DAILY;COUNT=0' }, 'body.recurrence.rule', /COUNT from 1/],
      ['a local UNTIL', { rule: 'FREQ=DAILY;UNTIL=20270301T090000' }, 'body.recurrence.rule', /UTC date-time/],
      ['a BYDAY position with WEEKLY', { rule: 'FREQ=WEEKLY;BYDAY=-1FR' }, 'body.recurrence.rule', /only with FREQ=MONTHLY or YEARLY/],
      ['a sixth Monday', { rule: 'FREQ=MONTHLY;BYDAY=6MO' }, 'body.recurrence.rule', /from -5 to 5/],
      ['a weekday that is not one', { rule: 'FREQ=WEEKLY;BYDAY=MO,XX' }, 'body.recurrence.rule', /BYDAY as weekdays/],
      ['BYMONTHDAY=32', { rule: 'FREQ=MONTHLY;BYMONTHDAY=32' }, 'body.recurrence.rule', /from 1 to 31/],
      ['BYMONTHDAY with WEEKLY', { rule: 'FREQ=WEEKLY;BYMONTHDAY=1' }, 'body.recurrence.rule', /FREQ=WEEKLY/],
      ['BYMONTH=13', { rule: 'FREQ=YEARLY;BYMONTH=13' }, 'body.recurrence.rule', /months from 1 to 12/],
      ['30 February', { rule: 'FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30' }, 'body.recurrence.rule', /never matches a date/],
      ['BYSETPOS alone', { rule: 'FREQ=MONTHLY;BYSETPOS=1' }, 'body.recurrence.rule', /another BY part/],
      ['a sixth Monday by BYSETPOS', { rule: 'FREQ=MONTHLY;BYDAY=MO;BYSETPOS=6' }, 'body.recurrence.rule', /never matches a date after dueAt/],
      ['an UNTIL before dueAt', { rule: 'FREQ=DAILY;UNTIL=20261231' }, 'body.recurrence.rule', /UNTIL before dueAt/],
      ['an unknown zone', { rule: 'FREQ=DAILY', timezone: 'Europe/Atlantis' }, 'body.recurrence.timezone', /IANA time zone name/],
      ['an offset for a zone', { rule: 'FREQ=DAILY', timezone: '+01:00' }, 'body.recurrence.timezone', /IANA time zone name/],
      ['an unknown from', { rule: 'FREQ=DAILY', from: 'done' }, 'body.recurrence.from', /one of: due, completion/],
      ['an unknown field', { rule: 'FREQ=DAILY', start: '2027-01-01' }, 'body.recurrence.start', /not a known field/],
      ['no rule', { timezone: 'UTC' }, 'body.recurrence.rule', /is required/],
      ['a string for the object', 'FREQ=DAILY', 'body.recurrence', /an object or null/],
    ])('refuses %s', async (_, recurrence, path, message) => {
      const owner = await t.signUp()
      const problem = expectProblemAt(await post(owner, recurring(recurrence as Json)), 400, path)
      expect(problem.errors).toHaveLength(1)
      expect(problem.errors[0].message).toMatch(message)
      expect(await a.listTasks(owner)).toEqual([])
    })

    it('names every wrong field of the object once', async () => {
      const problem = expectProblem(await post(alice, recurring({ rule: 'FREQ=SECONDLY', timezone: 'Nowhere/Land', from: 'now' })), 400)
      expect(problem.errors.map((e: Json) => e.path).sort()).toEqual(['body.recurrence.from', 'body.recurrence.rule', 'body.recurrence.timezone'])
    })

    it('refuses a recurring task without a dueAt, and a dueAt of null on one, naming body.dueAt', async () => {
      const owner = await t.signUp()
      expect(expectProblemAt(await post(owner, recurring({ rule: 'FREQ=DAILY' }, null)), 400, 'body.dueAt').errors[0].message).toMatch(/required/)
      expectProblemAt(await post(owner, { title: 'x', recurrence: { rule: 'FREQ=DAILY' } }), 400, 'body.dueAt')
      const plain = await a.createTask(owner, { title: 'no due date' })
      expectProblemAt(await patch(owner, plain.id, { recurrence: { rule: 'FREQ=WEEKLY' } }), 400, 'body.dueAt')
      const task = await a.createTask(owner, recurring({ rule: 'FREQ=WEEKLY' }))
      const before = await a.snapshot(owner)
      expect(expectProblemAt(await patch(owner, task.id, { dueAt: null }), 400, 'body.dueAt').errors[0].message).toMatch(/recurrence: null/)
      expectProblemAt(await patch(owner, task.id, { recurrence: { rule: 'FREQ=HOURLY' } }), 400, 'body.recurrence.rule')
      expectProblemAt(await patch(owner, task.id, { recurrence: { rule: 'FREQ=DAILY;UNTIL=20260101' } }), 400, 'body.recurrence.rule')
      // A completion decides the next dueAt: one request cannot also set it.
      expectProblemAt(await patch(owner, task.id, { completed: true, dueAt: '2027-02-01T09:00:00Z' }), 400, 'body.dueAt')
      expect(await a.snapshot(owner)).toEqual(before)
      // Stopping the series and clearing the due date together is fine.
      expect((await a.patchTask(owner, task.id, { recurrence: null, dueAt: null }))).toMatchObject({ recurrence: null, dueAt: null })
    })

    it("answers 404 for another user's task on each recurrence route, exactly as for a missing one", async () => {
      const mallory = await t.signUp()
      const theirs = await a.createTask(alice, recurring({ rule: 'FREQ=DAILY' }))
      for (const [method, suffix] of [['GET', 'completions'], ['GET', 'occurrences'], ['POST', 'skip']] as const) {
        const foreign = expectProblem(await t.inject({ method, url: `/api/v1/tasks/${theirs.id}/${suffix}`, headers: mallory.headers }), 404)
        const missing = expectProblem(await t.inject({ method, url: `/api/v1/tasks/${MISSING_ID}/${suffix}`, headers: mallory.headers }), 404)
        expect(sameProblem(foreign, theirs.id)).toEqual(sameProblem(missing, MISSING_ID))
      }
      expect(await a.readTask(alice, theirs.id)).toEqual(theirs)
    })

    it('refuses a limit outside 1-50 for the occurrences, and a forged history cursor', async () => {
      const task = await a.createTask(alice, recurring({ rule: 'FREQ=DAILY' }))
      for (const limit of [0, 51, 'x']) {
        expectProblemAt(await t.inject({ url: `/api/v1/tasks/${task.id}/occurrences?limit=${limit}`, headers: alice.headers }), 400, 'query.limit')
      }
      for (const cursor of ['garbage', Buffer.from('{"before":-1}').toString('base64url'), Buffer.from('[1]').toString('base64url')]) {
        expectProblemAt(await t.inject({ url: `/api/v1/tasks/${task.id}/completions?cursor=${cursor}`, headers: alice.headers }), 400, 'query.cursor')
      }
    })
  })

  describe('the field', () => {
    it('stores the rule in upper case, the zone as the database spells it, and from: due by default', async () => {
      const task = await a.createTask(alice, { title: 'Standup', dueAt: '2027-01-04T09:00:00+01:00', recurrence: { rule: 'freq=weekly;byday=mo,we', timezone: 'europe/berlin' } })
      expect(task.recurrence).toEqual({ rule: 'FREQ=WEEKLY;BYDAY=MO,WE', timezone: 'Europe/Berlin', from: 'due' })
      expect(await a.readTask(alice, task.id)).toEqual(task)
      const plain = await a.createTask(alice, { title: 'Once' })
      expect(plain.recurrence).toBeNull()
    })

    it("takes the user's time zone when the rule names none, as it was when the series was set", async () => {
      const owner = await t.signUp()
      expect((await t.inject({ method: 'PATCH', url: '/api/v1/users/me', headers: owner.headers, payload: { timezone: 'America/New_York' } })).statusCode).toBe(200)
      const task = await a.createTask(owner, { title: 'Bins', dueAt: '2027-01-05T07:00:00-05:00', recurrence: { rule: 'FREQ=WEEKLY' } })
      expect(task.recurrence.timezone).toBe('America/New_York')
      const plain = await a.createTask(owner, { title: 'later', dueAt: '2027-01-05T12:00:00Z' })
      expect((await a.patchTask(owner, plain.id, { recurrence: { rule: 'FREQ=DAILY', from: 'completion' } })).recurrence)
        .toEqual({ rule: 'FREQ=DAILY', timezone: 'America/New_York', from: 'completion' })
      await t.inject({ method: 'PATCH', url: '/api/v1/users/me', headers: owner.headers, payload: { timezone: 'Asia/Tokyo' } })
      expect((await a.readTask(owner, task.id)).recurrence.timezone).toBe('America/New_York')
    })

    it('sets, changes and stops a series with PATCH; recurring=true|false filters the list', async () => {
      const owner = await t.signUp()
      const task = await a.createTask(owner, { title: 'Water the plants', dueAt: '2027-01-02T08:00:00Z' })
      const plain = await a.createTask(owner, { title: 'Once' })
      const set = await a.patchTask(owner, task.id, { recurrence: { rule: 'FREQ=DAILY;INTERVAL=2', timezone: 'UTC' } })
      expect(set).toMatchObject({ version: 2, dueAt: '2027-01-02T08:00:00.000Z', recurrence: { rule: 'FREQ=DAILY;INTERVAL=2', timezone: 'UTC', from: 'due' } })
      expect((await a.listTasks(owner, { recurring: true })).map((x) => x.id)).toEqual([task.id])
      expect((await a.listTasks(owner, { recurring: false })).map((x) => x.id)).toEqual([plain.id])
      const stopped = await a.patchTask(owner, task.id, { recurrence: null })
      expect(stopped).toMatchObject({ version: 3, recurrence: null, dueAt: '2027-01-02T08:00:00.000Z' })
      expect(await a.listTasks(owner, { recurring: true })).toEqual([])
      // Stopped, a completion is a plain one: the task completes, nothing advances.
      const done = await a.patchTask(owner, task.id, { completed: true })
      expect(done).toMatchObject({ completed: true, dueAt: '2027-01-02T08:00:00.000Z' })
      expect(done.completedAt).toEqual(expect.any(String))
    })

    it('gives the current dueAt alone for a task that does not repeat, and nothing once completed', async () => {
      const task = await a.createTask(alice, { title: 'Once', dueAt: '2027-03-01T10:00:00Z' })
      expect(await occurrences(alice, task.id, 5)).toEqual(['2027-03-01T10:00:00.000Z'])
      expect(await occurrences(alice, (await a.createTask(alice, { title: 'Someday' })).id, 5)).toEqual([])
      await a.patchTask(alice, task.id, { completed: true })
      expect(await occurrences(alice, task.id, 5)).toEqual([])
    })
  })

  describe('each rule shape, against dates written out by hand', () => {
    it('FREQ=MONTHLY;BYDAY=-1FR: every last Friday at 09:00 Berlin time, through both DST changes of 2026', async () => {
      expect(await schedule('2026-01-30T09:00:00+01:00', 'FREQ=MONTHLY;BYDAY=-1FR', 'Europe/Berlin', 12)).toEqual([
        '2026-01-30T08:00:00.000Z', '2026-02-27T08:00:00.000Z', '2026-03-27T08:00:00.000Z', // CET
        '2026-04-24T07:00:00.000Z', '2026-05-29T07:00:00.000Z', '2026-06-26T07:00:00.000Z', // CEST
        '2026-07-31T07:00:00.000Z', '2026-08-28T07:00:00.000Z', '2026-09-25T07:00:00.000Z',
        '2026-10-30T08:00:00.000Z', '2026-11-27T08:00:00.000Z', '2026-12-25T08:00:00.000Z', // CET again from 25 October
      ])
    })

    it('FREQ=WEEKLY;BYDAY=MO,WE', async () => {
      expect(await schedule('2026-03-23T09:00:00+01:00', 'FREQ=WEEKLY;BYDAY=MO,WE', 'Europe/Berlin', 6)).toEqual([
        '2026-03-23T08:00:00.000Z', '2026-03-25T08:00:00.000Z',
        '2026-03-30T07:00:00.000Z', '2026-04-01T07:00:00.000Z', '2026-04-06T07:00:00.000Z', '2026-04-08T07:00:00.000Z',
      ])
    })

    it('FREQ=MONTHLY;BYMONTHDAY=-1 is the last day of each month; BYMONTHDAY=31 skips the shorter months', async () => {
      expect(await schedule('2026-01-31T18:00:00Z', 'FREQ=MONTHLY;BYMONTHDAY=-1', 'UTC', 6)).toEqual([
        '2026-01-31T18:00:00.000Z', '2026-02-28T18:00:00.000Z', '2026-03-31T18:00:00.000Z',
        '2026-04-30T18:00:00.000Z', '2026-05-31T18:00:00.000Z', '2026-06-30T18:00:00.000Z',
      ])
      expect(await schedule('2026-01-31T18:00:00Z', 'FREQ=MONTHLY;BYMONTHDAY=31', 'UTC', 7)).toEqual([
        '2026-01-31T18:00:00.000Z', '2026-03-31T18:00:00.000Z', '2026-05-31T18:00:00.000Z', '2026-07-31T18:00:00.000Z',
        '2026-08-31T18:00:00.000Z', '2026-10-31T18:00:00.000Z', '2026-12-31T18:00:00.000Z',
      ])
    })

    it('INTERVAL: every other Tuesday, and every third day', async () => {
      expect(await schedule('2026-01-06T12:00:00Z', 'FREQ=WEEKLY;INTERVAL=2;BYDAY=TU', 'UTC', 5)).toEqual([
        '2026-01-06T12:00:00.000Z', '2026-01-20T12:00:00.000Z', '2026-02-03T12:00:00.000Z', '2026-02-17T12:00:00.000Z', '2026-03-03T12:00:00.000Z',
      ])
      expect(await schedule('2026-02-26T12:00:00Z', 'FREQ=DAILY;INTERVAL=3', 'UTC', 4)).toEqual([
        '2026-02-26T12:00:00.000Z', '2026-03-01T12:00:00.000Z', '2026-03-04T12:00:00.000Z', '2026-03-07T12:00:00.000Z',
      ])
    })

    it('BYMONTH: the 15th of March and September', async () => {
      expect(await schedule('2026-03-15T10:00:00Z', 'FREQ=YEARLY;BYMONTH=3,9;BYMONTHDAY=15', 'UTC', 4)).toEqual([
        '2026-03-15T10:00:00.000Z', '2026-09-15T10:00:00.000Z', '2027-03-15T10:00:00.000Z', '2027-09-15T10:00:00.000Z',
      ])
    })

    it('BYSETPOS: the last weekday of each month; and the first Monday by position', async () => {
      expect(await schedule('2026-01-30T17:00:00Z', 'FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1', 'UTC', 12)).toEqual([
        '2026-01-30T17:00:00.000Z', '2026-02-27T17:00:00.000Z', '2026-03-31T17:00:00.000Z', '2026-04-30T17:00:00.000Z',
        '2026-05-29T17:00:00.000Z', '2026-06-30T17:00:00.000Z', '2026-07-31T17:00:00.000Z', '2026-08-31T17:00:00.000Z',
        '2026-09-30T17:00:00.000Z', '2026-10-30T17:00:00.000Z', '2026-11-30T17:00:00.000Z', '2026-12-31T17:00:00.000Z',
      ])
      expect(await schedule('2026-01-05T09:00:00Z', 'FREQ=MONTHLY;BYDAY=1MO', 'UTC', 6)).toEqual([
        '2026-01-05T09:00:00.000Z', '2026-02-02T09:00:00.000Z', '2026-03-02T09:00:00.000Z',
        '2026-04-06T09:00:00.000Z', '2026-05-04T09:00:00.000Z', '2026-06-01T09:00:00.000Z',
      ])
    })

    it('COUNT ends the series: the dueAt counts as the first', async () => {
      expect(await schedule('2026-05-01T07:00:00Z', 'FREQ=DAILY;COUNT=3', 'UTC', 10)).toEqual([
        '2026-05-01T07:00:00.000Z', '2026-05-02T07:00:00.000Z', '2026-05-03T07:00:00.000Z',
      ])
    })

    it('UNTIL ends the series: an instant, or a whole day in the zone', async () => {
      expect(await schedule('2026-05-01T07:00:00Z', 'FREQ=WEEKLY;UNTIL=20260515T070000Z', 'UTC', 10)).toEqual([
        '2026-05-01T07:00:00.000Z', '2026-05-08T07:00:00.000Z', '2026-05-15T07:00:00.000Z',
      ])
      // 23:30 in Tokyo on 15 May is 14:30 UTC: the date is Tokyo's, so the 15th is in.
      expect(await schedule('2026-05-01T23:30:00+09:00', 'FREQ=WEEKLY;UNTIL=20260515', 'Asia/Tokyo', 10)).toEqual([
        '2026-05-01T14:30:00.000Z', '2026-05-08T14:30:00.000Z', '2026-05-15T14:30:00.000Z',
      ])
    })
  })

  describe('time is exact: wall-clock time in the zone, whatever DST does', () => {
    it('keeps 09:00 in Berlin across the spring and the autumn change', async () => {
      expect(await schedule('2026-03-27T09:00:00+01:00', 'FREQ=DAILY', 'Europe/Berlin', 4)).toEqual([
        '2026-03-27T08:00:00.000Z', '2026-03-28T08:00:00.000Z', '2026-03-29T07:00:00.000Z', '2026-03-30T07:00:00.000Z',
      ])
      expect(await schedule('2026-10-23T09:00:00+02:00', 'FREQ=DAILY', 'Europe/Berlin', 4)).toEqual([
        '2026-10-23T07:00:00.000Z', '2026-10-24T07:00:00.000Z', '2026-10-25T08:00:00.000Z', '2026-10-26T08:00:00.000Z',
      ])
    })

    it('keeps 09:00 in New York across the spring and the autumn change', async () => {
      expect(await schedule('2026-03-06T09:00:00-05:00', 'FREQ=DAILY', 'America/New_York', 4)).toEqual([
        '2026-03-06T14:00:00.000Z', '2026-03-07T14:00:00.000Z', '2026-03-08T13:00:00.000Z', '2026-03-09T13:00:00.000Z',
      ])
      expect(await schedule('2026-10-30T09:00:00-04:00', 'FREQ=DAILY', 'America/New_York', 4)).toEqual([
        '2026-10-30T13:00:00.000Z', '2026-10-31T13:00:00.000Z', '2026-11-01T14:00:00.000Z', '2026-11-02T14:00:00.000Z',
      ])
    })

    it('moves a time that does not exist that day forward by the gap, and keeps the time of day after it', async () => {
      // 02:30 on 29 March in Berlin does not exist (02:00 CET became 03:00 CEST): 03:30 CEST.
      expect(await schedule('2026-03-27T02:30:00+01:00', 'FREQ=DAILY', 'Europe/Berlin', 4)).toEqual([
        '2026-03-27T01:30:00.000Z', '2026-03-28T01:30:00.000Z', '2026-03-29T01:30:00.000Z', '2026-03-30T00:30:00.000Z',
      ])
      // 02:30 on 8 March in New York does not exist: 03:30 EDT.
      expect(await schedule('2026-03-06T02:30:00-05:00', 'FREQ=DAILY', 'America/New_York', 4)).toEqual([
        '2026-03-06T07:30:00.000Z', '2026-03-07T07:30:00.000Z', '2026-03-08T07:30:00.000Z', '2026-03-09T06:30:00.000Z',
      ])
    })

    it('takes the first of the two instants of a time that happens twice', async () => {
      // 01:30 on 1 November happens in EDT, then in EST: the first is 05:30 UTC.
      expect(await schedule('2026-10-30T01:30:00-04:00', 'FREQ=DAILY', 'America/New_York', 4)).toEqual([
        '2026-10-30T05:30:00.000Z', '2026-10-31T05:30:00.000Z', '2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z',
      ])
      // 02:30 on 25 October in Berlin: CEST first, 00:30 UTC.
      expect(await schedule('2026-10-24T02:30:00+02:00', 'FREQ=DAILY', 'Europe/Berlin', 3)).toEqual([
        '2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z',
      ])
    })

    it('moves nothing in a zone without DST', async () => {
      expect(await schedule('2026-03-06T09:00:00+09:00', 'FREQ=DAILY', 'Asia/Tokyo', 4)).toEqual([
        '2026-03-06T00:00:00.000Z', '2026-03-07T00:00:00.000Z', '2026-03-08T00:00:00.000Z', '2026-03-09T00:00:00.000Z',
      ])
      expect(await schedule('2026-10-23T09:00:00+09:00', 'FREQ=WEEKLY;BYDAY=FR,SU', 'Asia/Tokyo', 4)).toEqual([
        '2026-10-23T00:00:00.000Z', '2026-10-25T00:00:00.000Z', '2026-10-30T00:00:00.000Z', '2026-11-01T00:00:00.000Z',
      ])
    })
  })
})
