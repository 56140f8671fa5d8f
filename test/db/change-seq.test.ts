import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Database } from '../../src/db/client.js'
import { statement } from '../../src/db/sql.js'
import { testDatabases } from '../helpers.js'

/**
 * The triggers give every written row of a user its own seq and keep the user's head and task
 * count, however many rows one statement or one transaction writes (a project's deletion cascades
 * to all its tasks, a move carries a subtree), and for several users in one transaction.
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
})
