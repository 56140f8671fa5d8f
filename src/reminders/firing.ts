import type { Database } from '../db/client.js'
import { statement } from '../db/sql.js'
import type { JobHandler } from '../jobs/scheduler.js'

/**
 * The firing takes the users' rows before the jobs' (as every write to a task does: its trigger
 * stamps the user's change seq, then reschedules the jobs), in one order: no deadlock with a write.
 */
const LOCK_USERS = statement('select u.id from users u where u.id = any($1::uuid[]) order by u.id for no key update')
/**
 * Finishes the claimed jobs $1 still held by $2 and logs each firing whose task is still open: a
 * change with the user's next seq (trigger, migration 0016). A firing later than $3 seconds is
 * recorded as missed, not fired. `at` is the real moment, not the transaction's start.
 */
const FIRE = statement(`with done as (
    delete from jobs j where j.id = any($1::bigint[]) and j.lease_token = $2::uuid
    returning j.user_id, j.task_id, j.reminder_id, j.occurrence, j.run_at, j.id
  )
  insert into reminder_changes as c (user_id, seq, op, task_id, reminder_id, occurrence, fire_at, at, title)
  select d.user_id, 0, case when d.run_at < clock_timestamp() - $3::int * interval '1 second' then 'missed' else 'fired' end,
    d.task_id, d.reminder_id, d.occurrence, d.run_at, clock_timestamp(), t.title
  from done d join tasks t on t.id = d.task_id and not t.completed
  order by d.user_id, d.run_at, d.id
  returning c.user_id as "userId", c.op, c.task_id as "taskId", c.reminder_id as "reminderId", c.at`)
/** The task shows when its reminder's firing was missed (its version moves: its JSON did). */
const MARK_MISSED = statement(`update tasks t set reminders = (
    select jsonb_agg(case when r->>'id' = $2 then r || jsonb_build_object('missedAt', $3::text) else r end order by n)
    from jsonb_array_elements(t.reminders) with ordinality as e(r, n)
  ), version = t.version + 1, updated_at = now()
  where t.id = $1::uuid and t.reminders @> jsonb_build_array(jsonb_build_object('id', $2::text))`)

export interface FiringOptions {
  /** REMINDER_GRACE_MINUTES: how late a firing may still be delivered. */
  graceMinutes: number
  /** The scheduler's lease: a firing delayed by a crashed process's lease is on time. */
  leaseSeconds: number
  /** After commit, with each user whose change log grew. */
  changed: (userId: string) => void
}

/**
 * The `reminder` jobs' handler: each claimed firing, in one transaction, becomes a change in its
 * user's log (or a missed one), and its job goes. A task completed or deleted meanwhile has no job
 * left to fire (the trigger removed it with the write).
 */
export function fireReminders (database: Database, { graceMinutes, leaseSeconds, changed }: FiringOptions): JobHandler {
  const lateness = graceMinutes * 60 + leaseSeconds
  return async (jobs, token) => {
    const userIds = [...new Set(jobs.map((job) => job.userId))]
    const logged = await database.transaction(async (tx) => {
      await tx.query(LOCK_USERS, [userIds])
      const rows = await tx.query<{ userId: string, op: 'fired' | 'missed', taskId: string, reminderId: string, at: string }>(FIRE,
        [jobs.map((job) => job.id), token, lateness])
      for (const row of rows) if (row.op === 'missed') await tx.query(MARK_MISSED, [row.taskId, row.reminderId, row.at])
      return rows
    })
    for (const userId of new Set(logged.map((row) => row.userId))) changed(userId)
  }
}
