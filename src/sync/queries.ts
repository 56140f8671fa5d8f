import type { Database } from '../db/client.js'
import { queryOne, statement } from '../db/sql.js'
import { isoTime, jsonObject } from '../db/rows.js'
import { PROJECT_FIELDS } from '../projects/queries.js'
import type { Project } from '../projects/schemas.js'
import type { ReminderFiredJson, ReminderMissedJson } from '../reminders/schemas.js'
import type { Task } from '../tasks/schemas.js'
import { NO_TASK, TASK_COLUMNS, TASK_TEXT_BYTES } from '../tasks/sql.js'

/**
 * A change as clients receive it: a task's or a project's current state, or its tombstone; or a
 * reminder that fired (or was missed), each its own change.
 */
export type ChangeOut =
  | { seq: number, type: 'task', op: 'upsert', task: Task }
  | { seq: number, type: 'project', op: 'upsert', project: Project }
  | { seq: number, type: 'task' | 'project', op: 'delete', id: string, deletedAt: string }
  | { seq: number, type: 'reminder', op: 'fired', reminder: ReminderFiredJson }
  | { seq: number, type: 'reminder', op: 'missed', reminder: ReminderMissedJson }

export interface ChangesOptions {
  /** At most this many changes. */
  limit: number
  /** And, after the first, only while the text read so far stays under this. */
  maxBytes: number
  /** A first sync reads live rows of one kind at a time; otherwise every change, deletes included. */
  only?: 'projects' | 'tasks'
}

type ChangeRow = Task & {
  seq: number
  type: 'task' | 'project' | 'reminder'
  project: Project | null
  deletedAt: string | null
  reminder: ReminderFiredJson | ReminderMissedJson | null
  bytes: number
  bytesBefore: number
}

function toChange ({ seq, type, project, deletedAt, reminder, bytes, bytesBefore, ...task }: ChangeRow): ChangeOut {
  if (type === 'reminder') {
    return 'firedAt' in reminder!
      ? { seq, type, op: 'fired', reminder }
      : { seq, type, op: 'missed', reminder: reminder as ReminderMissedJson }
  }
  if (deletedAt !== null) return { seq, type, op: 'delete', id: task.id, deletedAt }
  return type === 'project' ? { seq, type, op: 'upsert', project: project! } : { seq, type, op: 'upsert', task }
}

/** Changes after a seq, oldest first, each task at most once, in its latest state. */
export interface ChangePage {
  changes: ChangeOut[]
  hasMore: boolean
}

const POSITION = statement('select change_seq as "changeSeq", sync_floor_seq as "syncFloorSeq" from users where id = $1')
// One row shape for the three kinds of change: a task's columns (null for the others), a project
// as JSON (its few fields, formatted as the API writes them), a tombstone's time.
const TASKS_AFTER = `select t.seq, 'task' as type, ${TASK_COLUMNS}, null::json as project, null::timestamptz as "deletedAt",
  null::json as reminder, ${TASK_TEXT_BYTES} as bytes from tasks t where t.user_id = $1 and t.seq > $2 order by t.seq limit $3`
const PROJECTS_AFTER = `select p.seq, 'project' as type, p.id, ${NO_TASK}, ${jsonObject(PROJECT_FIELDS, 'p')} as project,
  null::timestamptz as "deletedAt", null::json as reminder, octet_length(p.name) + 200 as bytes
  from projects p where p.user_id = $1 and p.seq > $2 order by p.seq limit $3`
const TOMBSTONES_AFTER = `select d.seq, d.entity, d.entity_id, ${NO_TASK}, null::json, d.deleted_at, null::json, 0
  from tombstones d where d.user_id = $1 and d.seq > $2 order by d.seq limit $3`
/** A reminder's firing as the API shows it; `at` is when it fired, or when it was found missed. */
const reminderJson = (r: string) => `json_build_object('taskId', ${r}.task_id, 'reminderId', ${r}.reminder_id,
  'occurrence', ${isoTime(`${r}.occurrence`)}, 'fireAt', ${isoTime(`${r}.fire_at`)},
  case when ${r}.op = 'fired' then 'firedAt' else 'missedAt' end, ${isoTime(`${r}.at`)}, 'title', ${r}.title)`
const REMINDERS_AFTER = `select r.seq, 'reminder', null::uuid, ${NO_TASK}, null::json, null::timestamptz, ${reminderJson('r')},
  octet_length(r.title) + 300 from reminder_changes r where r.user_id = $1 and r.seq > $2 order by r.seq limit $3`
/**
 * The changes after $2, by seq: at most $3 of them, and only while the text before each stays under
 * $4 bytes (the first always comes): a page of large tasks ends early rather than loading tens of
 * megabytes.
 */
const upTo = (changes: string) => statement(`select * from (
    select c.*, sum(c.bytes) over (order by c.seq) - c.bytes as "bytesBefore" from (${changes}) c
  ) paged where paged."bytesBefore" < $4 order by paged.seq`)
/**
 * What changed: live tasks and projects, and tombstones, each at most once, in its latest state; and
 * every reminder fired or missed.
 */
const CHANGES_AFTER = upTo(`(${TASKS_AFTER}) union all (${PROJECTS_AFTER}) union all (${TOMBSTONES_AFTER})
  union all (${REMINDERS_AFTER}) order by seq limit $3`)
/** A first sync reads the live rows only, projects first (see sync/routes.ts). */
const LIVE_PROJECTS_AFTER = upTo(PROJECTS_AFTER)
const LIVE_TASKS_AFTER = upTo(TASKS_AFTER)
/**
 * Drops the tombstones and reminder firings older than the retention. Each user's floor rises to
 * their highest pruned one, so a cursor from before it gets a 410 instead of silently missing a delete.
 */
const PRUNE = statement(`
  with pruned as (
    delete from tombstones d where d.deleted_at < now() - make_interval(secs => $1)
    returning d.user_id, d.seq
  ), pruned_reminders as (
    delete from reminder_changes r where r.at < now() - make_interval(secs => $1)
    returning r.user_id, r.seq
  ), floors as (
    update users u set sync_floor_seq = greatest(u.sync_floor_seq, f.seq)
    from (select user_id, max(seq) as seq from (select * from pruned union all select * from pruned_reminders) p group by user_id) f
    where u.id = f.user_id
    returning u.id
  )
  select (select count(*) from pruned)::int + (select count(*) from pruned_reminders)::int as pruned,
    (select count(*) from floors)::int as users`)

export function syncQueries (db: Database) {
  return {
    /** The user's log position and prune floor; undefined when the user is gone. */
    position: (userId: string): Promise<{ changeSeq: number, syncFloorSeq: number } | undefined> =>
      queryOne(db, POSITION, [userId]),

    /**
     * Up to `limit` changes after `seq`, oldest first: each task changed since, once, in its current
     * state, and each one deleted since (unless `tombstones` is false: a first sync has nothing to delete).
     */
    async changesAfter (userId: string, seq: number, { limit, maxBytes, only }: ChangesOptions): Promise<ChangePage> {
      const rows = await db.query<ChangeRow>(only === 'projects' ? LIVE_PROJECTS_AFTER : only === 'tasks' ? LIVE_TASKS_AFTER : CHANGES_AFTER,
        [userId, seq, limit + 1, maxBytes])
      const page = rows.slice(0, limit)
      const last = page.at(-1)
      // More after this page: one row past the limit, or the bytes ran out before it.
      const hasMore = rows.length > limit || (last !== undefined && last.bytesBefore + last.bytes >= maxBytes)
      return { changes: page.map(toChange), hasMore }
    },

    /** Runs from a timer, never in a request; returns how many changes went. */
    async prune (retentionDays: number): Promise<number> {
      return (await queryOne<{ pruned: number }>(db, PRUNE, [retentionDays * 86_400]))?.pruned ?? 0
    },
  }
}

export type SyncQueries = ReturnType<typeof syncQueries>
