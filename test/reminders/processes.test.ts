import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  JWT_SECRET, register, request, sleep, startServer, stopServer, throwawayDatabase, waitUntilUp, within, type Account, type ServerProcess,
} from '../faults/support.js'
import type { ReminderChange } from './support.js'

/**
 * Reminders on real server processes sharing one PostgreSQL database (issue 19): each firing
 * happens once whichever process claims it, and once more after a process dies holding it, never
 * twice. PostgreSQL only: the embedded database belongs to one process.
 */

const url = process.env.TEST_DATABASE_URL
/** Short, so that a dead holder's claims come back within the test. */
const LEASE_SECONDS = 2
/** How long after its lease ends a firing a dead process held may take: the next claim, its transaction, a busy machine. */
const SLACK_MS = 1_500

/** Polls `check` until it returns a value other than undefined; fails after `ms`, saying `what`. */
async function waitFor<T> (what: string, ms: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`)
    await sleep(25)
  }
}

/** A GET that must answer 200; its JSON. */
async function getJson (server: ServerProcess, account: Account, path: string): Promise<any> {
  const res = await request(server.base, path, { headers: account.auth })
  if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}: ${res.body}`)
  return JSON.parse(res.body)
}

/** The user's sync cursor now: what a device that is up to date holds. */
async function cursorOf (server: ServerProcess, account: Account): Promise<string> {
  let page = await getJson(server, account, '/api/v1/sync?limit=1000')
  while (page.hasMore) page = await getJson(server, account, `/api/v1/sync?limit=1000&since=${encodeURIComponent(page.cursor)}`)
  return page.cursor
}

/** Every reminder change after `since`, as a device syncing with that cursor gets them. */
async function remindersSince (server: ServerProcess, account: Account, since: string): Promise<ReminderChange[]> {
  const found: ReminderChange[] = []
  let cursor = since
  for (;;) {
    const page = await getJson(server, account, `/api/v1/sync?limit=1000&since=${encodeURIComponent(cursor)}`)
    found.push(...page.changes.filter((change: { type: string }) => change.type === 'reminder'))
    cursor = page.cursor
    if (!page.hasMore) return found
  }
}

/** Creates `tasks` tasks, each with one relative and one absolute reminder due at `fireAt`, alternating servers. */
async function createReminded (servers: ServerProcess[], account: Account, tasks: number, fireAt: Date): Promise<void> {
  const dueAt = new Date(fireAt.getTime() + 30 * 60_000).toISOString()
  await Promise.all(Array.from({ length: tasks }, async (_, i) => {
    const server = servers[i % servers.length]!
    const res = await request(server.base, '/api/v1/tasks', {
      method: 'POST',
      headers: account.auth,
      json: { title: `remind ${i}`, dueAt, reminders: [{ offsetMinutes: -30 }, { at: fireAt.toISOString() }] },
    })
    if (res.status !== 201) throw new Error(`create answered ${res.status}: ${res.body}`)
  }))
}

/** The reminder_changes rows of these users: one per firing. */
const firingsOf = (db: pg.Client, userIds: string[]) => db.query<{ user_id: string, task_id: string, reminder_id: string, op: string, fire_at: Date, at: Date }>(
  'select user_id, task_id, reminder_id, op, fire_at, at from reminder_changes where user_id = any($1::uuid[])', [userIds]).then((r) => r.rows)
/** Firings still pending (or claimed and not done) for these users. */
const pendingOf = async (db: pg.Client, userIds: string[]) =>
  Number((await db.query('select count(*) as n from jobs where user_id = any($1::uuid[])', [userIds])).rows[0].n)
const key = (row: { task_id: string, reminder_id: string }) => `${row.task_id}/${row.reminder_id}`

describe.skipIf(!url)('reminders on two server processes on one PostgreSQL database', () => {
  let database: Awaited<ReturnType<typeof throwawayDatabase>>
  let db: pg.Client
  const servers: ServerProcess[] = []
  const clients: pg.Client[] = []
  /** Each process's connections carry its name, so a test can tell whose backend is whose. */
  const names = ['taskbase-a', 'taskbase-b']

  beforeAll(async () => {
    database = await throwawayDatabase(url!)
    for (const name of names) {
      const withName = new URL(database.url)
      withName.searchParams.set('application_name', name)
      servers.push(await startServer({ DATABASE_URL: withName.toString(), JWT_SECRET, JOBS_LEASE_SECONDS: String(LEASE_SECONDS) }))
    }
    // Both migrate at once: the migration lock lets one do it (src/db/postgres.ts).
    await Promise.all(servers.map((server) => waitUntilUp(server)))
    db = new pg.Client({ connectionString: database.url })
    await db.connect()
    clients.push(db)
  })

  afterAll(async () => {
    for (const server of servers) {
      // A test that failed may have left one stopped: it would not see SIGTERM until continued.
      if (server.child.exitCode === null && server.signal === null) process.kill(server.pid, 'SIGCONT')
      await stopServer(server)
    }
    for (const client of clients) await client.end().catch(() => {})
    await database?.drop()
  })

  it('delivers each of 300 reminders due at the same moment exactly once, whichever process claims it', async () => {
    const users = await Promise.all(Array.from({ length: 5 }, (_, i) => register(servers[i % 2]!.base)))
    // Ahead by enough to create 150 tasks first (about a second on a busy 2-core machine).
    const fireAt = new Date(Date.now() + 4_000)
    // Through both processes: each schedules some and tells the other (NOTIFY).
    await Promise.all(users.map((user) => createReminded(servers, user, 30, fireAt)))
    expect(Date.now(), 'the tasks were created before their reminders were due').toBeLessThan(fireAt.getTime() - 200)
    const cursors = await Promise.all(users.map((user, i) => cursorOf(servers[i % 2]!, user)))
    const userIds = users.map((user) => user.id)
    expect(await pendingOf(db, userIds)).toBe(300)

    // Done when no firing is pending: with no job left, nothing can fire again.
    await waitFor('all 300 firings done', 15_000, async () => await pendingOf(db, userIds) === 0 || undefined)

    const rows = await firingsOf(db, userIds)
    expect(rows).toHaveLength(300)
    expect(new Set(rows.map(key)).size).toBe(300)
    expect(rows.filter((row) => row.op !== 'fired' || row.fire_at.getTime() !== fireAt.getTime() || row.at < row.fire_at)).toEqual([])
    // What each user's devices get: 60 firings, once each, through either process.
    for (const [i, user] of users.entries()) {
      const changes = await remindersSince(servers[(i + 1) % 2]!, user, cursors[i]!)
      expect(changes.map((change) => change.op)).toEqual(Array(60).fill('fired'))
      expect(new Set(changes.map((change) => `${change.reminder.taskId}/${change.reminder.reminderId}`)).size).toBe(60)
      expect(new Set(changes.map((change) => change.reminder.fireAt))).toEqual(new Set([fireAt.toISOString()]))
    }
  })

  it('fires what a killed process had claimed once, after its lease, and nothing twice', async () => {
    const [a, b] = servers as [ServerProcess, ServerProcess]
    // blocked: a's firing of theirs waits on a lock we hold, so a dies between claim and firing.
    // orphaned: claimed by us, in SQL, as the scheduler claims, by a holder that is then gone.
    // bystander: due at the same moment, in a's claim, held up with it.
    const [blocked, orphaned, bystander] = await Promise.all([register(b.base), register(b.base), register(b.base)])
    const users = [blocked, orphaned, bystander]
    const userIds = users.map((user) => user.id)
    const fireAt = new Date(Date.now() + 3_000)
    // All through b: a learns of them only through b's NOTIFY.
    await Promise.all(users.map((user) => createReminded([b], user, 10, fireAt)))
    const cursors = await Promise.all(users.map((user) => cursorOf(b, user)))
    expect(await pendingOf(db, userIds)).toBe(60)

    const userLock = new pg.Client({ connectionString: database.url })
    const claimer = new pg.Client({ connectionString: database.url })
    for (const client of [userLock, claimer]) { await client.connect(); clients.push(client) }
    // A firing first locks its users' rows (src/reminders/firing.ts): with blocked's row held, a's
    // firing stops there, its claim made.
    await userLock.query('begin')
    await userLock.query('select id from users where id = $1 for no key update', [blocked.id])
    const lockHolder = (await userLock.query('select pg_backend_pid() as pid')).rows[0].pid as number
    // orphaned's jobs, locked before they are due: no process can claim them (SKIP LOCKED) before we do.
    await claimer.query('begin')
    await claimer.query('select id from jobs where user_id = $1 for update', [orphaned.id])
    // b pauses over the due moment (as a process starved of CPU would): a alone claims, and dies holding it.
    expect(Date.now(), 'the tasks were created before their reminders were due').toBeLessThan(fireAt.getTime() - 200)
    process.kill(b.pid, 'SIGSTOP')
    try {
      // a, woken by b's NOTIFY, claims the due firings and waits on our lock to fire them.
      const waiting = await waitFor('a process claiming the firings and waiting to fire them', 10_000, async () => {
        const { rows } = await db.query('select application_name as name from pg_stat_activity where $1 = any(pg_blocking_pids(pid))', [lockHolder])
        return rows.length > 0 ? rows.map((row) => row.name as string) : undefined
      })
      expect(waiting).toEqual(['taskbase-a'])
      // orphaned's jobs, due now, claimed as the scheduler claims them (src/jobs/scheduler.ts), by a
      // holder that will never finish them.
      const orphanedClaim = await claimer.query<{ reminder_id: string, lease_until: Date }>(`update jobs j
        set lease_until = statement_timestamp() + $2::int * interval '1 second', lease_token = $3::uuid, attempts = j.attempts + 1
        where j.user_id = $1 and j.run_at <= statement_timestamp() and j.lease_until is null
        returning j.reminder_id, j.lease_until`, [orphaned.id, LEASE_SECONDS, randomUUID()])
      expect(orphanedClaim.rows).toHaveLength(20)
      await claimer.query('commit')

      process.kill(a.pid, 'SIGKILL')
      await within(a.exited, 5_000, 'a exiting after SIGKILL')
      // What a left claimed: blocked's and bystander's firings, none fired yet.
      const { rows: held } = await db.query<{ reminder_id: string, lease_until: Date, lease_token: string }>(
        'select reminder_id, lease_until, lease_token from jobs where user_id = any($1::uuid[])', [[blocked.id, bystander.id]])
      expect(held).toHaveLength(40)
      expect(held.filter((job) => job.lease_token === null)).toEqual([])
      expect(await firingsOf(db, userIds)).toEqual([])
      await userLock.query('rollback')
      const leaseEnds = new Map([...held, ...orphanedClaim.rows].map((job) => [job.reminder_id, job.lease_until.getTime()]))

      process.kill(b.pid, 'SIGCONT')
      await waitFor('all 60 firings done by the process left', (LEASE_SECONDS * 1000) + 10_000, async () => await pendingOf(db, userIds) === 0 || undefined)

      const rows = await firingsOf(db, userIds)
      expect(rows).toHaveLength(60)
      expect(new Set(rows.map(key)).size).toBe(60)
      expect(rows.filter((row) => row.op !== 'fired')).toEqual([])
      // Each after the lease of the claim it was abandoned in, and within the lease (and slack) of its time.
      expect(rows.filter((row) => row.at.getTime() < leaseEnds.get(row.reminder_id)!)).toEqual([])
      expect(rows.filter((row) => row.at.getTime() - row.fire_at.getTime() > LEASE_SECONDS * 1000 + SLACK_MS)).toEqual([])
      for (const [i, user] of users.entries()) {
        const changes = await remindersSince(b, user, cursors[i]!)
        expect(changes.map((change) => change.op)).toEqual(Array(20).fill('fired'))
        expect(new Set(changes.map((change) => change.reminder.reminderId)).size).toBe(20)
      }
    } finally {
      if (b.child.exitCode === null && b.signal === null) process.kill(b.pid, 'SIGCONT')
    }
  })
})
