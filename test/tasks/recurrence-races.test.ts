import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, testDatabases, type Account, type TestApp } from '../helpers.js'
import { api, etagOf, type Json } from '../resources.js'

const postgres = testDatabases.filter((target) => target.name === 'postgres')
const YEAR = new Date().getUTCFullYear() + 2
const day = (n: number) => new Date(Date.UTC(YEAR, 4, n, 9)).toISOString()

/**
 * Two clients completing one occurrence at the same moment. PostgreSQL only (PGlite runs one
 * statement at a time: nothing races). The race is made, not hoped for: a connection of the test
 * holds the task's row while both requests start, and lets go only once both are waiting for it.
 * Without TEST_DATABASE_URL the suite is registered and skipped, never absent.
 */
describe.skipIf(postgres.length === 0)('concurrent completions of a recurring task', () => {
  describe.each(postgres)('on $name', (target) => {
    let t: TestApp
    let a: ReturnType<typeof api>
    let owner: Account
    let holder: pg.Client
    beforeAll(async () => {
      t = await buildTestApp(target)
      a = api(t)
      owner = await t.signUp()
      holder = new pg.Client({ connectionString: t.databaseUrl })
      await holder.connect()
    })
    afterAll(async () => {
      await holder.end()
      await t.close()
    })

    /**
     * How many of the app's statements wait for a lock (the row `holder` holds, or their turn after
     * another waiter). The activity view is a snapshot kept for the rest of a transaction: cleared
     * before each look, since `holder` is inside one.
     */
    const waitingForTheRow = async () => {
      await holder.query('select pg_stat_clear_snapshot()')
      return (await holder.query<{ n: number }>(`select count(*)::int as n from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()`)).rows[0]!.n
    }

    /** Starts `requests` while the task's row is locked; releases it once all of them wait on it. */
    async function race (taskId: string, requests: Array<() => Promise<{ statusCode: number, json: () => any }>>) {
      await holder.query('begin')
      await holder.query('select 1 from tasks where id = $1 for update', [taskId])
      const answers = Promise.all(requests.map((request) => request()))
      const deadline = Date.now() + 10_000
      while (await waitingForTheRow() < requests.length) {
        if (Date.now() > deadline) {
          await holder.query('rollback')
          throw new Error(`only ${await waitingForTheRow()} of ${requests.length} requests reached the locked row`)
        }
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      await holder.query('commit')
      return answers
    }

    const completion = (id: string, headers: Record<string, string> = {}) => () =>
      t.inject({ method: 'PATCH', url: `/api/v1/tasks/${id}`, headers: { ...owner.headers, ...headers }, payload: { completed: true } })
    const history = async (id: string): Promise<string[]> =>
      (await t.inject({ url: `/api/v1/tasks/${id}/completions`, headers: owner.headers })).json().items.map((c: Json) => c.occurrence)

    it('advances once when two clients complete the occurrence they both saw, with If-Match: the other gets a 412', async () => {
      for (let round = 0; round < 3; round++) {
        const task = await a.createTask(owner, { title: `round ${round}`, dueAt: day(1), recurrence: { rule: 'FREQ=DAILY', timezone: 'UTC' } })
        const ifMatch = { 'if-match': etagOf(task) }
        const answers = await race(task.id, [completion(task.id, ifMatch), completion(task.id, ifMatch)])
        expect(answers.map((res) => res.statusCode).sort()).toEqual([200, 412])
        const after = await a.readTask(owner, task.id)
        expect(after).toMatchObject({ dueAt: day(2), version: task.version + 1, completed: false })
        expect(await history(task.id)).toEqual([day(1)])
      }
    })

    it('without If-Match, completes the occurrence current when each runs: two in a row, none skipped', async () => {
      const task = await a.createTask(owner, { title: 'no If-Match', dueAt: day(1), recurrence: { rule: 'FREQ=DAILY', timezone: 'UTC' } })
      const answers = await race(task.id, [completion(task.id), completion(task.id)])
      expect(answers.map((res) => res.statusCode)).toEqual([200, 200])
      expect(answers.map((res) => res.json().dueAt).sort()).toEqual([day(2), day(3)])
      expect(await history(task.id)).toEqual([day(2), day(1)])
      expect((await a.readTask(owner, task.id)).version).toBe(task.version + 2)
    })

    it('advances once per write that succeeded when a completion, a skip (both with If-Match) and a classic toggle race', async () => {
      const task = await a.createTask(owner, { title: 'mixed', dueAt: day(1), recurrence: { rule: 'FREQ=DAILY', timezone: 'UTC' } })
      const ifMatch = { 'if-match': etagOf(task) }
      const skip = () => t.inject({ method: 'POST', url: `/api/v1/tasks/${task.id}/skip`, headers: { ...owner.headers, ...ifMatch } })
      const toggle = () => t.inject({ method: 'PATCH', url: `/api/${owner.id}/tasks/${task.id}/complete`, headers: owner.headers })
      const [patched, skipped, toggled] = (await race(task.id, [completion(task.id, ifMatch), skip, toggle])).map((res) => res.statusCode)
      // The toggle has no If-Match: it completes whatever occurrence is current when it runs. Of
      // the two that name the version they saw, at most one finds it still current.
      expect(toggled).toBe(200)
      expect([patched, skipped].every((status) => status === 200 || status === 412)).toBe(true)
      expect([patched, skipped].filter((status) => status === 200).length).toBeLessThanOrEqual(1)
      const advances = [patched, skipped, toggled].filter((status) => status === 200).length
      expect(await a.readTask(owner, task.id)).toMatchObject({ dueAt: day(1 + advances), version: task.version + advances })
      // Every advance but a skip recorded the occurrence it left.
      expect(await history(task.id)).toHaveLength(advances - (skipped === 200 ? 1 : 0))
    })
  })
})
