import { createHash, randomBytes } from 'node:crypto'
import type { Principal } from '../auth/authenticate.js'
import type { Database } from '../db/client.js'
import { queryOne, statement } from '../db/sql.js'
import type { Task } from '../tasks/schemas.js'
import { TASK_COLUMNS } from '../tasks/queries.js'

export interface Change {
  seq: number
  taskId: string
  op: 'upsert' | 'delete'
  at: string
}

/** A change as clients receive it: the task's current state, or its tombstone. */
export type ChangeOut =
  | { seq: number, op: 'upsert', task: Task }
  | { seq: number, op: 'delete', id: string, deletedAt: string }

const hashTicket = (ticket: string) => createHash('sha256').update(ticket).digest('hex')

const POSITION = statement('select change_seq as "changeSeq", sync_floor_seq as "syncFloorSeq" from users where id = $1')
const CHANGES_AFTER = statement(`select seq, task_id as "taskId", op, at from task_changes
  where user_id = $1 and seq > $2 order by seq limit $3`)
const TASKS_BY_ID = statement(`select ${TASK_COLUMNS} from tasks t where t.user_id = $1 and t.id = any($2::uuid[])`)
const TASKS_AFTER = statement(`select ${TASK_COLUMNS} from tasks t where t.user_id = $1 and ($2::uuid is null or t.id > $2)
  order by t.id limit $3`)
/**
 * Drops what no valid cursor needs: tombstones and superseded changes older than the retention.
 * Each user's floor rises to their highest pruned tombstone, so a cursor from before it gets a 410
 * instead of silently missing a delete.
 */
const PRUNE = statement(`
  with pruned as (
    delete from task_changes c
    where c.at < now() - make_interval(secs => $1)
      and (c.op = 'delete' or exists (
        select 1 from task_changes n where n.user_id = c.user_id and n.task_id = c.task_id and n.seq > c.seq))
    returning c.user_id, c.seq, c.op
  ), floors as (
    update users u set sync_floor_seq = greatest(u.sync_floor_seq, f.seq)
    from (select user_id, max(seq) as seq from pruned where op = 'delete' group by user_id) f
    where u.id = f.user_id
    returning u.id
  )
  select (select count(*) from pruned)::int as pruned, (select count(*) from floors)::int as users`)
const INSERT_TICKET = statement(`insert into event_tickets (ticket_hash, user_id, session_id, token_expires_at, expires_at)
  values ($1, $2, $3, $4::timestamptz, now() + interval '60 seconds')`)
const USE_TICKET = statement(`delete from event_tickets where ticket_hash = $1 and expires_at > now()
  returning user_id as "userId", session_id as "sessionId", token_expires_at as "tokenExpiresAt"`)
const PRUNE_TICKETS = statement('delete from event_tickets where expires_at <= now()')

export function syncQueries (db: Database) {
  return {
    /** The user's log position and prune floor; undefined when the user is gone. */
    position: (userId: string): Promise<{ changeSeq: number, syncFloorSeq: number } | undefined> =>
      queryOne(db, POSITION, [userId]),

    /** Up to `limit` changes after `seq`, oldest first. */
    changesAfter: (userId: string, seq: number, limit: number): Promise<Change[]> =>
      db.query<Change>(CHANGES_AFTER, [userId, seq, limit]),

    /**
     * Each task once, at the position of its last change, in its current state. An upsert of a task
     * deleted since is left out: its tombstone comes later in the log.
     */
    async resolve (userId: string, changes: Change[]): Promise<ChangeOut[]> {
      const latest = new Map<string, Change>()
      for (const change of changes) {
        latest.delete(change.taskId) // re-inserted, so the map keeps last-change order
        latest.set(change.taskId, change)
      }
      const upserted = [...latest.values()].filter((c) => c.op === 'upsert').map((c) => c.taskId)
      const current = upserted.length === 0 ? [] : await db.query<Task>(TASKS_BY_ID, [userId, upserted])
      const byId = new Map(current.map((t) => [t.id, t]))
      const out: ChangeOut[] = []
      for (const change of latest.values()) {
        if (change.op === 'delete') {
          out.push({ seq: change.seq, op: 'delete', id: change.taskId, deletedAt: change.at })
        } else {
          const task = byId.get(change.taskId)
          if (task) out.push({ seq: change.seq, op: 'upsert', task })
        }
      }
      return out
    },

    /** A page of the user's current tasks by id, for a first sync. */
    tasksAfter: (userId: string, afterId: string | undefined, limit: number): Promise<Task[]> =>
      db.query<Task>(TASKS_AFTER, [userId, afterId ?? null, limit]),

    /** Runs from a timer, never in a request; returns how many changes went. */
    async prune (retentionDays: number): Promise<number> {
      return (await queryOne<{ pruned: number }>(db, PRUNE, [retentionDays * 86_400]))?.pruned ?? 0
    },

    /**
     * A single-use ticket for `GET /events?ticket=`, valid 60 seconds, standing for the principal that
     * bought it: its stream ends with that token's session and expiry. Only its hash is stored.
     */
    async createTicket (principal: Principal): Promise<string> {
      const ticket = randomBytes(32).toString('base64url')
      await db.query(INSERT_TICKET, [hashTicket(ticket), principal.userId, principal.sessionId ?? null,
        new Date(principal.expiresAt).toISOString()])
      return ticket
    },

    /** The principal of a ticket, once: the ticket is deleted as it is used. */
    async useTicket (ticket: string): Promise<Principal | undefined> {
      const row = await queryOne<{ userId: string, sessionId: string | null, tokenExpiresAt: string | null }>(db, USE_TICKET, [hashTicket(ticket)])
      if (!row) return undefined
      // Tickets bought before they carried the token's expiry: the longest an access token lives.
      const expiresAt = row.tokenExpiresAt === null ? Date.now() + 15 * 60_000 : Date.parse(row.tokenExpiresAt)
      return { userId: row.userId, sessionId: row.sessionId ?? undefined, expiresAt }
    },

    async pruneTickets (): Promise<void> {
      await db.query(PRUNE_TICKETS)
    },
  }
}

export type SyncQueries = ReturnType<typeof syncQueries>
