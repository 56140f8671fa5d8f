import { createHash, randomBytes } from 'node:crypto'
import { and, asc, eq, gt, inArray, sql } from 'drizzle-orm'
import type { Db } from '../db/client.js'
import { eventTickets, taskChanges, tasks, users, type Task } from '../db/schema.js'

export interface Change {
  seq: number
  taskId: string
  op: 'upsert' | 'delete'
  at: Date
}

/** A change as clients receive it: the task's current state, or its tombstone. */
export type ChangeOut =
  | { seq: number, op: 'upsert', task: Task }
  | { seq: number, op: 'delete', id: string, deletedAt: Date }

const hashTicket = (ticket: string) => createHash('sha256').update(ticket).digest('hex')

export function syncQueries (db: Db) {
  return {
    /** The user's log position and prune floor; undefined when the user is gone. */
    async position (userId: string): Promise<{ changeSeq: number, syncFloorSeq: number } | undefined> {
      const [row] = await db.select({ changeSeq: users.changeSeq, syncFloorSeq: users.syncFloorSeq })
        .from(users).where(eq(users.id, userId))
      return row
    },

    /** Up to `limit` changes after `seq`, oldest first. */
    changesAfter (userId: string, seq: number, limit: number): Promise<Change[]> {
      return db.select({ seq: taskChanges.seq, taskId: taskChanges.taskId, op: taskChanges.op, at: taskChanges.at })
        .from(taskChanges)
        .where(and(eq(taskChanges.userId, userId), gt(taskChanges.seq, seq)))
        .orderBy(asc(taskChanges.seq))
        .limit(limit)
    },

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
      const current = upserted.length === 0
        ? []
        : await db.select().from(tasks).where(and(eq(tasks.userId, userId), inArray(tasks.id, upserted)))
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
    tasksAfter (userId: string, afterId: string | undefined, limit: number): Promise<Task[]> {
      return db.select().from(tasks)
        .where(and(eq(tasks.userId, userId), afterId === undefined ? undefined : gt(tasks.id, afterId)))
        .orderBy(asc(tasks.id))
        .limit(limit)
    },

    /**
     * Drops what no valid cursor needs: tombstones and superseded changes older than the
     * retention. Each user's floor rises to their highest pruned tombstone, so a cursor from before
     * it gets a 410 instead of silently missing a delete. Runs from a timer, never in a request.
     */
    async prune (retentionDays: number): Promise<number> {
      const result = await db.execute(sql`
        with pruned as (
          delete from ${taskChanges} c
          where c.at < now() - make_interval(secs => ${retentionDays * 86_400})
            and (c.op = 'delete' or exists (
              select 1 from ${taskChanges} n where n.user_id = c.user_id and n.task_id = c.task_id and n.seq > c.seq))
          returning c.user_id, c.seq, c.op
        ), floors as (
          update ${users} u set sync_floor_seq = greatest(u.sync_floor_seq, f.seq)
          from (select user_id, max(seq) as seq from pruned where op = 'delete' group by user_id) f
          where u.id = f.user_id
          returning u.id
        )
        select (select count(*) from pruned)::int as pruned, (select count(*) from floors)::int as users`)
      // Both drivers answer { rows }; the shared Db type cannot say so.
      const [row] = (result as unknown as { rows: Array<{ pruned: number }> }).rows
      return Number(row?.pruned ?? 0)
    },

    /** A single-use ticket for `GET /events?ticket=`, valid 60 seconds. Only its hash is stored. */
    async createTicket (userId: string): Promise<string> {
      const ticket = randomBytes(32).toString('base64url')
      await db.insert(eventTickets).values({
        ticketHash: hashTicket(ticket), userId, expiresAt: sql`now() + interval '60 seconds'`,
      })
      return ticket
    },

    /** The ticket's user, once: the ticket is deleted as it is used. */
    async useTicket (ticket: string): Promise<string | undefined> {
      const [row] = await db.delete(eventTickets)
        .where(and(eq(eventTickets.ticketHash, hashTicket(ticket)), sql`${eventTickets.expiresAt} > now()`))
        .returning({ userId: eventTickets.userId })
      return row?.userId
    },

    async pruneTickets (): Promise<void> {
      await db.delete(eventTickets).where(sql`${eventTickets.expiresAt} <= now()`)
    },
  }
}

export type SyncQueries = ReturnType<typeof syncQueries>
