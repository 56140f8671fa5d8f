import { randomUUID } from 'node:crypto'
import { isDatabaseUnavailable } from '../http/errors.js'
import { statement, type Sql } from '../db/sql.js'
import type { StoredReminder } from '../db/schema.js'
import type { Recurrence } from '../recurrence/schedule.js'
import type { Task } from './schemas.js'
import { TASK_COLUMNS } from './sql.js'

/** A plain task to insert (no project, no parent), its values checked and in stored form. */
export interface NewTask {
  userId: string
  title: string
  description: string | null
  priority: string
  dueAt: string | null
  tags: string[]
  tagKeys: string[]
  recurrence: Recurrence | null
  dueLocal: string | null
  reminders: StoredReminder[]
}

/** At most this many creates go in one statement: 32 rows of JSON are a few kilobytes. */
const MAX_ROWS = 32
/**
 * At most this many batch statements run at once: two keep PostgreSQL busy while Node gathers the
 * next batch (measured for issue 21, docs/explain.md). What comes meanwhile waits for one to end.
 */
const MAX_RUNNING = 2
/**
 * A create that waited this long for a batch fails as unavailable (503), as one that waited this
 * long for a pooled connection does (db/postgres.ts, connectionTimeoutMillis).
 */
const CREATE_WAIT_MS = 5_000

/**
 * Inserts the tasks of $1 (a JSON array of rows, `n` their order), one per user, each user's row
 * taken as the single INSERT takes it: the seq and the count in the same UPDATE, the cap checked
 * on the locked row. The owners' rows are locked in one order, as every statement that locks
 * several does (reminders/firing.ts), and SKIP LOCKED leaves out a user whose row another
 * transaction holds: the batch never waits behind one user's long write. A row left out (locked,
 * or at the cap) goes the single INSERT's way, which waits its turn and tells the two apart.
 *
 * The inserts run after every owner row is updated (the ORDER BY sorts them first), so
 * `taskbase.hooked` is on, if any owner has a webhook endpoint, before the first row's outbox
 * trigger is queued; the outbox finds the endpoints of each row's own owner (migration 0018).
 */
const INSERT_TOGETHER = statement(`with i as materialized (
    select * from jsonb_to_recordset($1::jsonb) as i(n int, id uuid, "userId" uuid, title text, description text,
      priority task_priority, "dueAt" timestamptz, tags text[], "tagKeys" text[], recurrence jsonb, "dueLocal" timestamp, reminders jsonb)
  ), locked as (
    select u.id from users u where u.id in (select i."userId" from i) order by u.id for no key update skip locked
  ), owner as (
    update users u set change_seq = u.change_seq + 1, task_count = u.task_count + 1
    from locked l where u.id = l.id and u.task_count < $2
    returning u.id, u.change_seq, case when u.webhooks_enabled then set_config('taskbase.hooked', 'on', true) end as hooked
  )
  insert into tasks as t (id, user_id, title, description, priority, due_at, tags, tag_keys, recurrence, due_local, reminders, seq, position)
  select i.id, i."userId", i.title, i.description, i.priority, i."dueAt", i.tags, i."tagKeys", i.recurrence, i."dueLocal", i.reminders,
    o.change_seq, taskbase_last_key(o.change_seq)
  from i join owner o on o.id = i."userId"
  order by i.n
  returning ${TASK_COLUMNS}`)

interface Waiting {
  task: NewTask
  /** performance.now() when it came. */
  since: number
  resolve: (task: Task | undefined) => void
  reject: (error: unknown) => void
}

export interface CreateBatchStats {
  /** Statements that created the tasks of several users at once. */
  batches: number
  /** The creates those statements carried. */
  rows: number
}

/**
 * Plain creates, gathered: those that arrive in one turn of the event loop, or while the batches
 * before them run, are inserted together, one statement and one commit for up to 32 users. Under
 * load that is one WAL flush, one executor start and one round trip for many rows instead of one
 * per row (issue 21, docs/explain.md). A lone create goes alone, by `insertOne`, as it always did.
 *
 * A create waits for a batch to end when its user has a create in a running batch (one batch
 * holds one create per user), or when MAX_RUNNING batches run. A batch never waits for a row (SKIP
 * LOCKED), so that is short; one that cannot run (the table locked, the database stuck) ends with
 * the statement timeout, and a create that waited `waitMs` for one fails with a 503, as it would
 * have waiting for a pooled connection. A batch of one goes alone and holds no place, so one
 * user's burst goes to the pool at once, and takes turns on their row as it did.
 *
 * A batch the database refuses (one bad value fails the statement, and nothing of it is written)
 * is retried one create at a time, so each gets its own answer. A batch lost with its connection is
 * not retried: it may have committed. Its creates fail as a lone create would have.
 *
 * `insertOne` is the single INSERT: the task, or undefined when the user is at the cap.
 */
export function createBatcher (db: Sql, maxTasksPerUser: number, insertOne: (task: NewTask) => Promise<Task | undefined>,
  waitMs = CREATE_WAIT_MS) {
  let queue: Waiting[] = []
  let running = 0
  let scheduled = false
  /** Users with a create in a running batch. */
  const inBatch = new Set<string>()
  let expiry: NodeJS.Timeout | undefined
  const stats: CreateBatchStats = { batches: 0, rows: 0 }

  const schedule = () => {
    if (queue.length === 0) return
    if (running >= MAX_RUNNING) {
      watchWaits()
    } else if (!scheduled) {
      scheduled = true
      setImmediate(dispatch)
    }
  }

  function dispatch () {
    scheduled = false
    while (running < MAX_RUNNING) {
      const batch = take()
      if (batch.length === 0) break
      if (batch.length === 1) {
        alone(batch[0]!)
        continue
      }
      running++
      for (const { task } of batch) inBatch.add(task.userId)
      void together(batch).finally(() => {
        running--
        for (const { task } of batch) inBatch.delete(task.userId)
        schedule()
      })
    }
    if (queue.length > 0) watchWaits()
  }

  /**
   * The next batch: the first waiting create of each user with none in a running batch, in the
   * order they came, up to MAX_ROWS.
   */
  function take (): Waiting[] {
    const batch: Waiting[] = []
    const users = new Set<string>()
    const later: Waiting[] = []
    for (const waiting of queue) {
      const user = waiting.task.userId
      if (batch.length < MAX_ROWS && !inBatch.has(user) && !users.has(user)) {
        users.add(user)
        batch.push(waiting)
      } else {
        later.push(waiting)
      }
    }
    queue = later
    return batch
  }

  /** Fails each create that has waited `waitMs`, when it has; the queue is in the order they came. */
  function watchWaits () {
    if (expiry !== undefined || queue.length === 0) return
    expiry = setTimeout(() => {
      expiry = undefined
      const now = performance.now()
      const expired = queue.filter((waiting) => now - waiting.since >= waitMs)
      if (expired.length > 0) {
        queue = queue.filter((waiting) => now - waiting.since < waitMs)
        for (const waiting of expired) waiting.reject(new Error('A create waited too long for the database'))
      }
      watchWaits()
    }, Math.max(0, queue[0]!.since + waitMs - performance.now())).unref()
  }

  /** By the single INSERT, which waits for the user's row if another transaction holds it. */
  function alone (waiting: Waiting): void {
    insertOne(waiting.task).then(waiting.resolve, waiting.reject)
  }

  async function together (batch: Waiting[]): Promise<void> {
    const ids = batch.map(() => randomUUID())
    let created: Task[]
    try {
      created = await db.query<Task>(INSERT_TOGETHER, [JSON.stringify(batch.map(({ task }, n) => ({ n, id: ids[n], ...task }))), maxTasksPerUser])
    } catch (error) {
      if (refusedWhole(error)) {
        for (const waiting of batch) alone(waiting)
      } else {
        for (const waiting of batch) waiting.reject(error)
      }
      return
    }
    stats.batches++
    stats.rows += batch.length
    const byId = new Map(created.map((task) => [task.id, task]))
    for (const [n, waiting] of batch.entries()) {
      const task = byId.get(ids[n]!)
      // Left out: the user's row was held, or the user is at the cap (or gone).
      if (task === undefined) alone(waiting)
      else waiting.resolve(task)
    }
  }

  return {
    /** Inserts `task` alone or with others: the task, or undefined when its user is at the cap. */
    insert (task: NewTask): Promise<Task | undefined> {
      return new Promise((resolve, reject) => {
        queue.push({ task, since: performance.now(), resolve, reject })
        schedule()
      })
    },
    stats: (): Readonly<CreateBatchStats> => stats,
  }
}

/**
 * The database refused the statement (an ERROR, which rolls its transaction back): nothing of the
 * batch was written. A connection lost, a server shutting down, or an error that never reached the
 * server leaves the commit unknown.
 */
function refusedWhole (error: unknown): boolean {
  const { code, severity } = (error ?? {}) as { code?: unknown, severity?: unknown }
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && severity !== 'FATAL' && severity !== 'PANIC' &&
    !isDatabaseUnavailable(error)
}
