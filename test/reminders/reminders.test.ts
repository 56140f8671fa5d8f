import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { asStream, get, json, portOf } from '../events/sse.js'
import { buildTestApp, expectProblem, testDatabases, type Account, type TestApp } from '../helpers.js'
import { changesSince, cursorOf, fromNow, remindersSince } from './support.js'

const MINUTE = 60_000

describe.each(testDatabases)('reminders on $name', (target) => {
  let t: TestApp
  beforeAll(async () => { t = await buildTestApp(target) })
  afterAll(() => t.close())

  /** The task's pending firings, as the scheduler will find them. */
  const pending = async (taskId: string) => (await t.database.query<{ reminderId: string, runAt: string, occurrence: string | null }>(
    { name: 'reminder_jobs', text: 'select reminder_id as "reminderId", run_at as "runAt", occurrence from jobs where task_id = $1 order by run_at' },
    [taskId]))
  const patch = (account: Account, id: string, payload: object) =>
    t.inject({ method: 'PATCH', url: `/api/v1/tasks/${id}`, headers: account.headers, payload })

  it('fires a relative and an absolute reminder once each, promptly, into sync and the event stream', async () => {
    const alice = await t.signUp()
    const since = await cursorOf(t, alice)
    await t.app.listen({ port: 0, host: '127.0.0.1' })
    const stream = asStream(await get(portOf(t.app), '/api/v1/events', alice.headers))
    const dueAt = fromNow(MINUTE + 1_500)
    const task = await t.createTask(alice, { title: 'Call the dentist', dueAt, reminders: [{ offsetMinutes: -1 }, { at: fromNow(1_800) }] })
    const [relative, absolute] = task.reminders
    expect(task.reminders).toEqual([
      { id: expect.any(String), offsetMinutes: -1, missedAt: null },
      { id: expect.any(String), at: expect.any(String), missedAt: null },
    ])
    const fired = await remindersSince(t, alice, since, 2)
    expect(fired).toEqual([relative, absolute].map((reminder) => ({
      type: 'reminder',
      op: 'fired',
      reminder: {
        taskId: task.id, reminderId: reminder.id, occurrence: task.dueAt, title: 'Call the dentist',
        fireAt: reminder.at ?? new Date(Date.parse(task.dueAt) - MINUTE).toISOString(), firedAt: expect.any(String),
      },
    })))
    for (const { reminder } of fired) {
      const late = Date.parse(reminder.firedAt!) - Date.parse(reminder.fireAt)
      expect(late).toBeGreaterThanOrEqual(0)
      expect(late).toBeLessThan(5_000)
    }
    const events = (await stream.nextEvents(3, 5_000)).filter((e) => e.event === 'reminder.fired')
    expect(events.map(json)).toEqual(fired.map((c) => c.reminder))
    // Fired once: nothing is left to fire, and a second read finds the same two.
    expect(await pending(task.id)).toEqual([])
    expect((await changesSince(t, alice, since)).changes.filter((c) => c.type === 'reminder')).toHaveLength(2)
    // A first sync sends current state, not past firings.
    const full = (await t.inject({ url: '/api/v1/sync', headers: alice.headers })).json()
    expect(full.changes.map((c: { type: string }) => c.type)).toEqual(['task'])
    expect(full.changes[0].task.reminders).toEqual(task.reminders)
  })

  it('keeps the ids sent back, gives new ones, and replaces the list', async () => {
    const alice = await t.signUp()
    const task = await t.createTask(alice, { title: 'Report', dueAt: fromNow(10 * MINUTE), reminders: [{ offsetMinutes: -5 }, { offsetMinutes: -1 }] })
    const [five, one] = task.reminders
    const at = '2099-01-01T09:00:00+01:00'
    const res = await patch(alice, task.id, { reminders: [{ id: one.id, offsetMinutes: -1 }, { at }] })
    expect(res.statusCode).toBe(200)
    const updated = res.json()
    expect(updated.reminders).toEqual([one, { id: expect.any(String), at: '2099-01-01T08:00:00.000Z', missedAt: null }])
    expect(updated.reminders[1].id).not.toBe(five.id)
    expect(updated.version).toBe(task.version + 1)
    expect((await pending(task.id)).map((job) => job.reminderId)).toEqual([one.id, updated.reminders[1].id])
    expect((await patch(alice, task.id, { reminders: [] })).json().reminders).toEqual([])
    expect(await pending(task.id)).toEqual([])
    expect((await t.createTask(alice, { title: 'none' })).reminders).toEqual([])
  })

  it('refuses bad reminders with a 400 naming the field, and stores nothing', async () => {
    const alice = await t.signUp()
    const task = await t.createTask(alice, { title: 'Keep', dueAt: fromNow(10 * MINUTE), reminders: [{ offsetMinutes: -5 }] })
    const refusals: Array<[unknown, string]> = [
      [Array.from({ length: 11 }, (_, i) => ({ offsetMinutes: -i })), 'body.reminders'],
      [[{ offsetMinutes: -5, at: fromNow(MINUTE) }], 'body.reminders.0'],
      [[{}], 'body.reminders.0'],
      [[{ offsetMinutes: 1.5 }], 'body.reminders.0.offsetMinutes'],
      [[{ offsetMinutes: -600_000 }], 'body.reminders.0.offsetMinutes'],
      [[{ at: 'tomorrow' }], 'body.reminders.0.at'],
      [[{ offsetMinutes: -5, note: 'x' }], 'body.reminders.0.note'],
      [[{ id: crypto.randomUUID(), offsetMinutes: -5 }], 'body.reminders.0.id'],
      [[{ id: task.reminders[0].id, offsetMinutes: -5 }, { id: task.reminders[0].id, offsetMinutes: -1 }], 'body.reminders.1.id'],
      ['soon', 'body.reminders'],
    ]
    for (const [reminders, path] of refusals) {
      const problem = expectProblem(await patch(alice, task.id, { reminders }), 400)
      expect(problem.errors.map((e: { path: string }) => e.path), JSON.stringify(reminders)).toContain(path)
    }
    // A relative reminder needs a dueAt: on create, and on a task that has none.
    const created = await t.inject({ method: 'POST', url: '/api/v1/tasks', headers: alice.headers, payload: { title: 'x', reminders: [{ offsetMinutes: -5 }] } })
    expect(expectProblem(created, 400).errors[0].path).toBe('body.reminders')
    const undated = await t.createTask(alice, { title: 'undated' })
    expect(expectProblem(await patch(alice, undated.id, { reminders: [{ offsetMinutes: -5 }] }), 400).errors[0].path).toBe('body.reminders')
    expect(expectProblem(await patch(alice, task.id, { dueAt: null, reminders: [{ offsetMinutes: -5 }] }), 400).errors[0].path).toBe('body.reminders')
    expect((await t.inject({ url: `/api/v1/tasks/${task.id}`, headers: alice.headers })).json()).toEqual(task)
    expect((await t.inject({ url: '/api/v1/tasks', headers: alice.headers })).json().items).toHaveLength(2)
  })

  it('cancels and reschedules pending firings with the write: complete, reopen, new dueAt, no dueAt, delete', async () => {
    const alice = await t.signUp()
    const dueAt = new Date(Date.now() + 60 * MINUTE).toISOString()
    const task = await t.createTask(alice, { title: 'Move me', dueAt, reminders: [{ offsetMinutes: -30 }, { at: '2099-01-01T00:00:00Z' }, { at: '2001-01-01T00:00:00Z' }] })
    const [relative, absolute] = task.reminders
    const at = (ms: number) => new Date(ms).toISOString()
    // The one already past never fires.
    expect(await pending(task.id)).toEqual([
      { reminderId: relative.id, runAt: at(Date.parse(dueAt) - 30 * MINUTE), occurrence: dueAt },
      { reminderId: absolute.id, runAt: '2099-01-01T00:00:00.000Z', occurrence: dueAt },
    ])
    expect((await patch(alice, task.id, { completed: true })).statusCode).toBe(200)
    expect(await pending(task.id)).toEqual([])
    expect((await patch(alice, task.id, { completed: false })).statusCode).toBe(200)
    expect(await pending(task.id)).toHaveLength(2)

    const later = new Date(Date.now() + 120 * MINUTE).toISOString()
    expect((await patch(alice, task.id, { dueAt: later })).statusCode).toBe(200)
    expect(await pending(task.id)).toEqual([
      { reminderId: relative.id, runAt: at(Date.parse(later) - 30 * MINUTE), occurrence: later },
      { reminderId: absolute.id, runAt: '2099-01-01T00:00:00.000Z', occurrence: later },
    ])
    // Without a dueAt the relative reminder stays on the task, inactive, until one returns.
    const undated = (await patch(alice, task.id, { dueAt: null })).json()
    expect(undated.reminders).toEqual(task.reminders)
    expect(await pending(task.id)).toEqual([{ reminderId: absolute.id, runAt: '2099-01-01T00:00:00.000Z', occurrence: null }])
    expect((await patch(alice, task.id, { dueAt: later })).statusCode).toBe(200)
    expect(await pending(task.id)).toHaveLength(2)
    // A title change leaves them as they are.
    expect((await patch(alice, task.id, { title: 'Renamed' })).statusCode).toBe(200)
    expect(await pending(task.id)).toHaveLength(2)

    expect((await t.inject({ method: 'DELETE', url: `/api/v1/tasks/${task.id}`, headers: alice.headers })).statusCode).toBe(204)
    expect(await pending(task.id)).toEqual([])
  })

  it('reminds of the next occurrence when a recurring task advances', async () => {
    const alice = await t.signUp()
    const dueAt = new Date(Date.now() + 60 * MINUTE).toISOString()
    const task = await t.createTask(alice, { title: 'Water the plants', dueAt, recurrence: { rule: 'FREQ=DAILY' }, reminders: [{ offsetMinutes: -15 }] })
    const done = (await patch(alice, task.id, { completed: true })).json()
    expect(done.completed).toBe(false)
    expect(done.dueAt).toBe(new Date(Date.parse(dueAt) + 24 * 60 * MINUTE).toISOString())
    expect(done.reminders).toEqual(task.reminders)
    expect(await pending(task.id)).toEqual([{ reminderId: task.reminders[0].id, runAt: new Date(Date.parse(done.dueAt) - 15 * MINUTE).toISOString(), occurrence: done.dueAt }])
    const skipped = (await t.inject({ method: 'POST', url: `/api/v1/tasks/${task.id}/skip`, headers: alice.headers })).json()
    expect((await pending(task.id))[0]!.occurrence).toBe(skipped.dueAt)
  })

  it('never shows one user\'s reminders to another', async () => {
    const alice = await t.signUp()
    const mallory = await t.signUp()
    const malloryCursor = await cursorOf(t, mallory)
    const aliceCursor = await cursorOf(t, alice)
    const task = await t.createTask(alice, { title: 'Private', reminders: [{ at: fromNow(800) }] })
    expectProblem(await patch(mallory, task.id, { reminders: [] }), 404)
    expectProblem(await patch(mallory, task.id, { reminders: [{ id: task.reminders[0].id, at: fromNow(MINUTE) }] }), 404)
    await remindersSince(t, alice, aliceCursor, 1)
    expect((await changesSince(t, mallory, malloryCursor)).changes).toEqual([])
  })
})

describe.each(testDatabases)('reminders across downtime on $name', (target) => {
  let opened: Awaited<ReturnType<typeof target.open>>
  beforeAll(async () => { opened = await target.open() })
  afterAll(() => opened.drop())

  /** The server with these settings on the one database, as a restart would bring it back. */
  const serve = (env: Record<string, string>) => buildTestApp(target, { database: opened.database, env: { JOBS_LEASE_SECONDS: '1', ...env } })

  /** Creates a task reminding in `ms`, and stops the server at once: it is down at the reminder's time. */
  async function downAcross (env: Record<string, string>, account: Account | undefined, ms: number) {
    const before = await serve(env)
    const user = account ?? await before.signUp()
    const since = await cursorOf(before, user)
    const task = await before.createTask(user, { title: 'While down', reminders: [{ at: fromNow(ms) }] })
    await before.close()
    return { user, since, task }
  }
  const waitUntil = async (time: number) => { while (Date.now() < time) await new Promise((resolve) => setTimeout(resolve, 50)) }

  it('delivers a firing missed while down, once, late, when the server is back within the grace', async () => {
    const { user, since, task } = await downAcross({}, undefined, 600)
    const fireAt = Date.parse(task.reminders[0].at)
    // Late by more than the lease (1 s), which alone would still count as on time.
    await waitUntil(fireAt + 2_000)
    const after = await serve({ REMINDER_GRACE_MINUTES: '60' })
    try {
      const [change] = await remindersSince(after, user, since, 1)
      expect(change!.op).toBe('fired')
      expect(Date.parse(change!.reminder.firedAt!) - fireAt).toBeGreaterThanOrEqual(2_000)
      expect((await after.inject({ url: `/api/v1/tasks/${task.id}`, headers: user.headers })).json().reminders[0].missedAt).toBeNull()
    } finally {
      await after.close()
    }
  })

  it('records a firing later than the grace as missed: on the task and in the log, not fired', async () => {
    const { user, since, task } = await downAcross({}, undefined, 600)
    const fireAt = Date.parse(task.reminders[0].at)
    await waitUntil(fireAt + 2_000)
    const after = await serve({ REMINDER_GRACE_MINUTES: '0' })
    try {
      const [change] = await remindersSince(after, user, since, 1)
      expect(change).toEqual({
        type: 'reminder', op: 'missed',
        reminder: { taskId: task.id, reminderId: task.reminders[0].id, occurrence: null, fireAt: task.reminders[0].at, missedAt: expect.any(String), title: 'While down' },
      })
      const now = (await after.inject({ url: `/api/v1/tasks/${task.id}`, headers: user.headers })).json()
      expect(now.reminders).toEqual([{ ...task.reminders[0], missedAt: change!.reminder.missedAt }])
      expect(now.version).toBe(task.version + 1)
      // Sent back unchanged, the reminder keeps missedAt; edited, it is cleared.
      const kept = await after.inject({ method: 'PATCH', url: `/api/v1/tasks/${task.id}`, headers: user.headers, payload: { reminders: [{ id: task.reminders[0].id, at: task.reminders[0].at }] } })
      expect(kept.json().reminders[0].missedAt).toBe(change!.reminder.missedAt)
      const edited = await after.inject({ method: 'PATCH', url: `/api/v1/tasks/${task.id}`, headers: user.headers, payload: { reminders: [{ id: task.reminders[0].id, at: fromNow(60_000) }] } })
      expect(edited.json().reminders[0].missedAt).toBeNull()
    } finally {
      await after.close()
    }
  })
})
