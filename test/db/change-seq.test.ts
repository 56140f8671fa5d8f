import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Database } from '../../src/db/client.js'
import { statement, type Sql } from '../../src/db/sql.js'
import { INSERT } from '../../src/tasks/queries.js'
import { testDatabases } from '../helpers.js'

/**
 * The triggers give every written row of a user its own seq and keep the user's head and task
 * count, however many rows one statement or one transaction writes (a project's deletion cascades
 * to all its tasks, a move carries a subtree), and for several users in one transaction; and the
 * webhook outbox queues exactly the rows of users with an enabled endpoint.
 */
describe.each(testDatabases)('change seqs of statements that write many rows on $name', (target) => {
  let database: Database
  let drop: () => Promise<void>
  beforeAll(async () => { ({ database, drop } = await target.open()) })
  afterAll(() => drop())

  const sql = <R = Record<string, unknown>>(text: string, values: unknown[] = []) => database.query<R>(statement(text), values)
  const newUser = async () => (await sql<{ id: string }>(
    `insert into users (email, password_hash) values ('seq-' || gen_random_uuid() || '@example.com', 'x') returning id`))[0]!.id
  /** Every seq the user's log holds (live rows and tombstones), and the user's head and count. */
  const log = async (userId: string) => {
    const seqs = (await sql<{ seq: number }>(`select seq from tasks where user_id = $1 union all select seq from projects where user_id = $1
      union all select seq from tombstones where user_id = $1 order by seq`, [userId])).map((row) => Number(row.seq))
    const [user] = await sql<{ head: number, taskCount: number, live: number }>(`select change_seq as head, task_count as "taskCount",
      (select count(*)::int from tasks where user_id = $1) as live from users where id = $1`, [userId])
    return { seqs, head: Number(user!.head), taskCount: user!.taskCount, live: user!.live }
  }
  const expectWhole = (state: Awaited<ReturnType<typeof log>>) => {
    expect(new Set(state.seqs).size).toBe(state.seqs.length)
    expect(state.head).toBe(Math.max(0, ...state.seqs))
    expect(state.taskCount).toBe(state.live)
  }

  it('numbers each row of a many-row insert, update and cascading delete, and keeps the head and the count', async () => {
    const owner = await newUser()
    const [project] = await sql<{ id: string }>(`insert into projects (user_id, name) values ($1, 'Big') returning id`, [owner])
    await sql(`insert into tasks (user_id, title, project_id) select $1, 'task ' || g, $2 from generate_series(1, 500) g`, [owner, project!.id])
    let state = await log(owner)
    expect(state.seqs).toEqual(Array.from({ length: 501 }, (_, i) => i + 1))
    expectWhole(state)

    await sql(`update tasks set completed = true where user_id = $1 and title like 'task 1%'`, [owner])
    expectWhole(await log(owner))

    await sql('delete from projects where id = $1', [project!.id]) // and its 500 tasks, by the foreign key
    state = await log(owner)
    expect(state.live).toBe(0)
    expect(await sql('select 1 from tombstones where user_id = $1', [owner])).toHaveLength(501)
    expectWhole(state)
  })

  it('keeps each user\'s numbering apart when one transaction writes for two users in turn', async () => {
    const [alice, bob] = [await newUser(), await newUser()]
    await database.transaction(async (tx) => {
      for (let i = 0; i < 3; i++) {
        for (const userId of [alice, bob]) {
          await tx.query(statement(`insert into tasks (user_id, title) select $1, 'task ' || g from generate_series(1, 3) g`), [userId])
        }
      }
      await tx.query(statement('delete from tasks where user_id = $1 and title = $2'), [alice, 'task 2'])
    })
    for (const userId of [alice, bob]) expectWhole(await log(userId))
    expect((await log(bob)).seqs).toEqual(Array.from({ length: 9 }, (_, i) => i + 1))
    expect((await log(alice)).head).toBe(12)
  })

  it('goes on counting after a statement that failed in an earlier transaction', async () => {
    const owner = await newUser()
    await expect(sql(`insert into tasks (user_id, title, parent_id) select $1, 'orphan ' || g, gen_random_uuid() from generate_series(1, 3) g`, [owner]))
      .rejects.toThrow()
    await sql(`insert into tasks (user_id, title) values ($1, 'kept')`, [owner])
    const state = await log(owner)
    expect(state.seqs).toEqual([1])
    expectWhole(state)
  })

  /** An enabled endpoint of `userId`, written by hand (the routes' rules are not under test here). */
  const addEndpoint = async (userId: string, on: Sql = database) => (await on.query<{ id: string }>(statement(
    `insert into webhooks (user_id, url, events, secret) values ($1, 'https://hooks.invalid/', '{*}', 'x') returning id`), [userId]))[0]!.id
  /** The events the outbox queued for `userId`: each its type and the seq of the change. */
  const queued = async (userId: string) => (await sql<{ type: string, seq: number }>(
    'select type, seq from webhook_events where user_id = $1 order by id', [userId])).map((row) => `${row.type} ${row.seq}`)

  it('queues events for the rows of a user with an enabled endpoint only, however a statement or a transaction mixes users', async () => {
    const [alice, bob, carol] = [await newUser(), await newUser(), await newUser()]
    await addEndpoint(alice)
    await addEndpoint(carol)
    // One statement, the users' rows in turn: every row of a user with an endpoint is queued, whoever came before.
    await sql(`insert into tasks (user_id, title) select x.u, 'task ' || x.n from unnest($1::uuid[]) with ordinality as x(u, n)`,
      [[alice, bob, carol, alice, bob, carol]])
    await database.transaction(async (tx) => {
      for (const userId of [bob, alice, bob, carol]) {
        await tx.query(statement("update tasks set completed = true where user_id = $1 and title in ('task 1', 'task 2', 'task 3')"), [userId])
      }
      await tx.query(statement("delete from tasks where user_id = any($1::uuid[]) and title in ('task 4', 'task 5', 'task 6')"), [[alice, bob, carol]])
    })
    // Reminders of all three firing in one statement, as the scheduler fires them.
    await sql(`insert into reminder_changes (user_id, seq, op, task_id, reminder_id, fire_at, at, title)
      select x.u, 0, 'fired', gen_random_uuid(), gen_random_uuid(), now(), now(), 'r' from unnest($1::uuid[]) as x(u)`, [[bob, alice, bob, carol]])
    const each = ['task.upsert 1', 'task.upsert 2', 'task.upsert 3', 'task.delete 4', 'reminder.fired 5']
    expect(await queued(alice)).toEqual(each)
    expect(await queued(carol)).toEqual(each)
    expect(await queued(bob)).toEqual([])
    expect((await log(bob)).head).toBe(7) // bob's writes were made, only not queued
  })

  it('queues from the very next write after an endpoint is disabled, enabled or deleted', async () => {
    const owner = await newUser()
    const hooked = async () => (await sql<{ hooked: boolean }>('select webhooks_enabled as hooked from users where id = $1', [owner]))[0]!.hooked
    const write = async () => {
      await sql(`insert into tasks (user_id, title) values ($1, 'next')`, [owner])
      return (await queued(owner)).length
    }
    expect([await hooked(), await write()]).toEqual([false, 0])
    const first = await addEndpoint(owner)
    expect([await hooked(), await write()]).toEqual([true, 1])
    await sql('update webhooks set enabled = false where id = $1', [first])
    expect([await hooked(), await write()]).toEqual([false, 1])
    await sql('update webhooks set enabled = true where id = $1', [first])
    expect([await hooked(), await write()]).toEqual([true, 2])
    const second = await addEndpoint(owner)
    await sql('update webhooks set enabled = false where id = $1', [second])
    expect([await hooked(), await write()]).toEqual([true, 3]) // the first still listens
    await sql('delete from webhooks where id = $1', [first]) // and its events
    expect([await hooked(), await write()]).toEqual([false, 0])
    // In one transaction: a write, an endpoint enabled, a write (the owner's row is already updated).
    await database.transaction(async (tx) => {
      await tx.query(statement(`insert into tasks (user_id, title) values ($1, 'before')`), [owner])
      await tx.query(statement('update webhooks set enabled = true where id = $1'), [second])
      await tx.query(statement(`insert into tasks (user_id, title) values ($1, 'after')`), [owner])
    })
    expect(await queued(owner)).toHaveLength(1)
  })

  it('numbers a create that takes its own seq (POST /tasks) in turn with the writes the trigger numbers', async () => {
    const [alice, bob] = [await newUser(), await newUser()]
    await addEndpoint(alice)
    // The create's own statement, as taskQueries sends it: title, no fields, the cap (migration 0020).
    const create = (on: Sql, userId: string, title: string) =>
      on.query(INSERT, [userId, title, null, 'none', null, [], [], null, null, '[]', 1_000])
    await create(database, alice, 'first')
    await database.transaction(async (tx) => {
      await tx.query(statement(`insert into tasks (user_id, title) select $1, 'bulk ' || g from generate_series(1, 3) g`), [alice])
      await create(tx, alice, 'after the bulk insert')
      await tx.query(statement("update tasks set completed = true where user_id = $1 and title like 'bulk%'"), [alice])
      await create(tx, bob, 'bob in between')
      await create(tx, alice, 'after bob')
      await tx.query(statement("delete from tasks where user_id = $1 and title = 'bulk 1'"), [alice])
      await create(tx, alice, 'after the delete')
    })
    // Creates 1, 5, 9 and 11; the bulk insert 2-4, updated as 6-8; the delete's tombstone 10.
    const state = await log(alice)
    expect(state.seqs).toEqual([1, 5, 7, 8, 9, 10, 11])
    expectWhole(state)
    expectWhole(await log(bob))
    // Its position is the last of the inbox, made from its seq as the trigger makes it.
    expect(await sql(`select position from tasks where user_id = $1 and title = 'after the delete'`, [alice]))
      .toEqual([{ position: 'aB' }])
    // Alice's creates were queued for her endpoint, as the trigger's writes are; bob's were not.
    expect(await queued(alice)).toEqual([...[1, 2, 3, 4, 5, 6, 7, 8, 9].map((seq) => `task.upsert ${seq}`), 'task.delete 10', 'task.upsert 11'])
    expect(await queued(bob)).toEqual([])
  })

  /**
   * PostgreSQL only (PGlite runs one statement at a time). A write and an endpoint's creation take
   * turns on the user's row; the one that waited sees the other. Made, not hoped for: the first
   * holds its transaction open until the second is seen waiting for a lock.
   */
  it.runIf(target.name === 'postgres')('queues a write that waited for an endpoint\'s creation, and not one the creation waited for', async () => {
    const waitingForALock = async () => {
      const deadline = Date.now() + 10_000
      while ((await sql<{ n: number }>(`select count(*)::int as n from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock'`))[0]!.n === 0) {
        if (Date.now() > deadline) throw new Error('nothing waits for a lock')
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    }
    /** Runs `first` in a transaction held open until `second` waits for it to end. */
    const inTurn = async (first: (tx: Sql) => Promise<unknown>, second: () => Promise<unknown>) => {
      let release!: () => void
      const released = new Promise<void>((resolve) => { release = resolve })
      let began!: () => void
      const begun = new Promise<void>((resolve) => { began = resolve })
      const held = database.transaction(async (tx) => {
        await first(tx)
        began()
        await released
      })
      await begun
      const waiting = second()
      await waitingForALock()
      release()
      await Promise.all([held, waiting])
    }
    /** As the route creates an endpoint: its owner's row locked first. */
    const create = (tx: Sql, userId: string) => tx.query(statement('select 1 from users where id = $1 for no key update'), [userId])
      .then(() => addEndpoint(userId, tx))
    const write = (tx: Sql, userId: string) => tx.query(statement(`insert into tasks (user_id, title) values ($1, 'raced')`), [userId])

    const alice = await newUser()
    await inTurn((tx) => write(tx, alice), () => database.transaction((tx) => create(tx, alice)))
    expect(await queued(alice)).toEqual([]) // committed before the endpoint was
    const bob = await newUser()
    await inTurn((tx) => create(tx, bob), () => write(database, bob))
    expect(await queued(bob)).toEqual(['task.upsert 1'])
  })
})
