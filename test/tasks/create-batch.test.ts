import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import type { Database } from '../../src/db/client.js'
import { statement } from '../../src/db/sql.js'
import { toProblem } from '../../src/http/errors.js'
import { Problem } from '../../src/http/problem.js'
import { taskQueries } from '../../src/tasks/queries.js'
import { testDatabases } from '../helpers.js'

const TASKS_MAX = 3

/**
 * Plain creates of several users that arrive together are inserted by one statement (issue 21):
 * each still gets its own task, seq, position, cap and webhook event, and its own failure. Creates
 * started in one synchronous loop are all queued before the batcher's next turn, so they go in one
 * batch for certain, and `createStats` says so.
 */
describe.each(testDatabases)('creates gathered into one statement on $name', (target) => {
  let database: Database
  let drop: () => Promise<void>
  let url: string | undefined
  let tasks: ReturnType<typeof taskQueries>
  beforeAll(async () => {
    ({ database, drop, url } = await target.open())
    tasks = taskQueries(database, { maxTasksPerUser: TASKS_MAX })
  })
  afterAll(() => drop())

  const sql = <R = Record<string, unknown>>(text: string, values: unknown[] = []) => database.query<R>(statement(text), values)
  const newUsers = async (n: number) => (await sql<{ id: string }>(
    `insert into users (email, password_hash) select 'batch-' || gen_random_uuid() || '@example.com', 'x' from generate_series(1, $1) returning id`, [n]))
    .map((row) => row.id)
  const user = async (id: string) => (await sql<{ seq: number, count: number }>(
    'select change_seq::int as seq, task_count as count from users where id = $1', [id]))[0]!
  /** The sessions of this database, other than `client`'s, waiting for a lock. */
  const lockWaiters = async (client: pg.Client) => (await client.query(`select count(*)::int as n from pg_stat_activity
    where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()`)).rows[0].n as number
  /** Runs `work` and says how many batches and batched rows it added. */
  const counted = async <T>(work: () => Promise<T>) => {
    const before = { ...tasks.createStats() }
    const result = await work()
    const after = tasks.createStats()
    return { result, batches: after.batches - before.batches, rows: after.rows - before.rows }
  }

  it('creates the task of each of 20 users in one statement, each with its own seq, position and count', async () => {
    const users = await newUsers(20)
    const { result: created, batches, rows } = await counted(() =>
      Promise.all(users.map((id, i) => tasks.create(id, { title: ` task ${i} `, priority: 'high', tags: ['Work', 'work', 'home'], dueAt: '2027-01-02T03:04:05.678+01:00' }))))
    expect({ batches, rows }).toEqual({ batches: 1, rows: 20 })
    for (const [i, task] of created.entries()) {
      expect(task).toMatchObject({ title: `task ${i}`, priority: 'high', tags: ['Work', 'home'], dueAt: '2027-01-02T02:04:05.678Z', completed: false, version: 1 })
      const [stored] = await sql<{ userId: string, seq: number, position: string, tagKeys: string[] }>(
        'select user_id as "userId", seq::int as seq, position, tag_keys as "tagKeys" from tasks where id = $1', [task.id])
      expect(stored).toEqual({ userId: users[i], seq: 1, position: 'a1', tagKeys: ['work', 'home'] })
      expect(task.position).toBe('a1')
      expect(await user(users[i]!)).toEqual({ seq: 1, count: 1 })
    }
  })

  it('makes each of a user\'s creates sent together, beside other users\'', async () => {
    const [alice, bob] = await newUsers(2)
    const created = await Promise.all([
      tasks.create(alice!, { title: 'one' }), tasks.create(bob!, { title: 'bob' }), tasks.create(alice!, { title: 'two' }),
    ])
    expect(created.map((task) => task.title)).toEqual(['one', 'bob', 'two'])
    const stored = await sql<{ title: string, seq: number, position: string }>(
      'select title, seq::int as seq, position from tasks where user_id = $1 order by seq', [alice])
    expect(stored.map((row) => row.seq)).toEqual([1, 2])
    expect(stored.map((row) => row.position)).toEqual(['a1', 'a2'])
    expect(await user(alice!)).toEqual({ seq: 2, count: 2 })
  })

  it('refuses the create of a user at the cap and makes the others of the same batch', async () => {
    const [full, ...others] = await newUsers(5)
    for (let i = 0; i < TASKS_MAX; i++) await tasks.create(full!, { title: `fill ${i}` })
    const { result: answers, batches } = await counted(() =>
      Promise.allSettled([...others, full!].map((id) => tasks.create(id, { title: 'one more' }))))
    expect(batches).toBe(1)
    expect(answers.slice(0, 4).map((a) => a.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled'])
    const refused = answers[4]!
    expect(refused.status).toBe('rejected')
    expect((refused as PromiseRejectedResult).reason).toBeInstanceOf(Problem)
    expect(((refused as PromiseRejectedResult).reason as Problem).status).toBe(409)
    expect(await user(full!)).toEqual({ seq: TASKS_MAX, count: TASKS_MAX })
  })

  it('answers each create on its own when one value fails the whole statement, and writes nothing twice', async () => {
    const users = await newUsers(6)
    // PostgreSQL stores no NUL in text: the batch is refused, then each create is made alone.
    const { result: answers, batches } = await counted(() =>
      Promise.allSettled(users.map((id, i) => tasks.create(id, { title: i === 2 ? 'nul \u0000 here' : `fine ${i}` }))))
    expect(batches).toBe(0)
    expect(answers.map((a) => a.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled'])
    expect(((answers[2] as PromiseRejectedResult).reason as { code?: string }).code).toMatch(/^22/)
    const stored = await sql<{ n: number }>('select count(*)::int as n from tasks where user_id = any($1::uuid[])', [users])
    expect(stored[0]!.n).toBe(5)
    expect(await user(users[2]!)).toEqual({ seq: 0, count: 0 })
  })

  it('queues the webhook event of the user with an endpoint, wherever it sits in the batch, and only theirs', async () => {
    const users = await newUsers(8)
    const hooked = users[6]!
    await sql(`insert into webhooks (user_id, url, events, secret) values ($1, 'https://hooks.invalid/', '{*}', 'x')`, [hooked])
    const { result: created, batches } = await counted(() => Promise.all(users.map((id) => tasks.create(id, { title: 'hooked or not' }))))
    expect(batches).toBe(1)
    const events = await sql<{ userId: string, type: string, taskId: string }>(
      `select user_id as "userId", type, snapshot->>'id' as "taskId" from webhook_events where user_id = any($1::uuid[])`, [users])
    expect(events).toEqual([{ userId: hooked, type: 'task.upsert', taskId: created[6]!.id }])
  })

  it.runIf(target.name === 'postgres')('does not wait behind a user whose row another transaction holds: that create waits alone', async () => {
    const [held, ...free] = await newUsers(4)
    const holder = new pg.Client({ connectionString: url })
    await holder.connect()
    try {
      await holder.query('begin')
      await holder.query('select 1 from users where id = $1 for update', [held])
      let heldDone = false
      const waiting = tasks.create(held!, { title: 'waits' }).then((task) => { heldDone = true; return task })
      const { result: created, batches } = await counted(() => Promise.all(free.map((id) => tasks.create(id, { title: 'goes on' }))))
      expect(created).toHaveLength(3)
      // The batch took the three free users and left the held one to the single INSERT, which waits for the lock.
      expect(batches).toBe(1)
      expect(await lockWaiters(holder)).toBeGreaterThan(0)
      expect(heldDone).toBe(false)
      await holder.query('commit')
      expect((await waiting).title).toBe('waits')
      expect(await user(held!)).toEqual({ seq: 1, count: 1 })
    } finally {
      await holder.end()
    }
  })

  it.runIf(target.name === 'postgres')('fails a create that waited too long for a stuck batch with a 503, and writes nothing for it', async () => {
    const waitMs = 300
    const patient = taskQueries(database, { maxTasksPerUser: TASKS_MAX, createWaitMs: waitMs })
    const users = await newUsers(6)
    const holder = new pg.Client({ connectionString: url })
    await holder.connect()
    // Two checks of the event loop: the batcher dispatches in the first, after the creates queued.
    const turn = () => new Promise((resolve) => setImmediate(() => setImmediate(resolve)))
    try {
      await holder.query('begin')
      await holder.query('lock table tasks in access exclusive mode')
      // Two batches, both stuck on the table; the third pair has no batch to go in.
      const started = performance.now()
      const stuck = [patient.create(users[0]!, { title: 'a' }), patient.create(users[1]!, { title: 'b' })]
      await turn()
      stuck.push(patient.create(users[2]!, { title: 'c' }), patient.create(users[3]!, { title: 'd' }))
      await turn()
      const late = await Promise.allSettled([patient.create(users[4]!, { title: 'e' }), patient.create(users[5]!, { title: 'f' })])
      expect(performance.now() - started).toBeGreaterThanOrEqual(waitMs)
      for (const answer of late) {
        expect(answer.status).toBe('rejected')
        expect(toProblem((answer as PromiseRejectedResult).reason).status).toBe(503)
      }
      // The late pair never reached the database: only the two batches wait on the lock.
      expect(await lockWaiters(holder)).toBe(2)
      await holder.query('commit')
      expect((await Promise.all(stuck)).map((task) => task.title)).toEqual(['a', 'b', 'c', 'd'])
      expect(patient.createStats()).toEqual({ batches: 2, rows: 4 })
      const stored = await sql<{ n: number }>('select count(*)::int as n from tasks where user_id = any($1::uuid[])', [users.slice(4)])
      expect(stored[0]!.n).toBe(0)
    } finally {
      await holder.end()
    }
  })
})
