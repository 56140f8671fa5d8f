/**
 * What the embedded database's own vacuum costs (src/db/vacuum.ts): every request waits while one of
 * its steps runs. A fresh data directory from the build's seed, BENCH_VACUUM_TASKS (100,000) tasks of
 * one user, then passes, each step timed: after the insert (every row new), after an update of a
 * fifth of the tasks (the churn that makes one due), once without cleaning the indexes (a busy server)
 * and once with (a quiet one), and with nothing changed.
 *
 *   npm run bench:vacuum
 *   BENCH_VACUUM_TASKS=10000 npm run bench:vacuum
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openEmbedded } from '../src/db/client.js'
import { statement } from '../src/db/sql.js'
import { passSteps } from '../src/db/vacuum.js'

const TASKS = Number(process.env.BENCH_VACUUM_TASKS ?? 100_000)

const INSERT_TASKS = statement(`
insert into tasks (user_id, title, description, tags, tag_keys, priority, due_at)
select $1::uuid, 'Task ' || g || ' about the ' || (array['report','invoice','garden','budget'])[1 + g % 4],
       case when g % 4 = 0 then null else 'Details of task ' || g end,
       case when g % 3 = 0 then array['Work'] else '{}' end,
       case when g % 3 = 0 then array['work'] else '{}' end,
       (array['none','low','medium','high']::task_priority[])[1 + g % 4],
       case when g % 5 = 0 then null else now() + (g % 240) * interval '1 day' end
from generate_series(1, $2::int) g`)

const dir = await mkdtemp(join(tmpdir(), 'taskbase-vacuum-'))
// Its own runs are off: this one times them.
const database = await openEmbedded(dir, { vacuum: null })
try {
  await database.migrate()
  const [user] = await database.query<{ id: string }>(statement(
    "insert into users (email, password_hash) values ('vacuum@example.com', 'not a password hash') returning id"))
  const started = performance.now()
  await database.query(INSERT_TASKS, [user!.id, TASKS])
  console.log(`inserted ${TASKS.toLocaleString('en-US')} tasks in ${((performance.now() - started) / 1000).toFixed(1)} s`)

  const names = async (sql: string) => (await database.query<{ name: string }>(statement(sql))).map((row) => row.name)
  const pass = async (label: string, cleanIndexes: boolean) => {
    const times: Array<[string, number]> = []
    for (const step of await passSteps(names, cleanIndexes)) {
      const t = performance.now()
      await database.query(statement(step))
      times.push([step, performance.now() - t])
    }
    const total = times.reduce((sum, [, ms]) => sum + ms, 0)
    const longest = times.reduce((a, b) => (b[1] > a[1] ? b : a))
    const kind = cleanIndexes ? 'indexes cleaned' : 'indexes left'
    console.log(`${label} (${kind}): ${times.length} steps, ${Math.round(total)} ms in all, the longest ${Math.round(longest[1])} ms: ${longest[0]}`)
    for (const [step, ms] of times.filter(([, ms]) => ms >= 10)) console.log(`  ${String(Math.round(ms)).padStart(5)} ms  ${step}`)
  }
  await pass('after the insert', false)
  // The tasks without a due date: one in five.
  const churn = statement('update tasks set completed = not completed, completed_at = now() where user_id = $1 and due_at is null')
  await database.query(churn, [user!.id])
  await pass('after updating a fifth of the tasks', false)
  await pass('then', true)
  await database.query(churn, [user!.id])
  await pass('after updating a fifth of the tasks again', true)
  await pass('with nothing changed', false)
} finally {
  await database.close()
  await rm(dir, { recursive: true, force: true })
}
