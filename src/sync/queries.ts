import { createHash, randomBytes } from 'node:crypto'
import type { Principal } from '../auth/authenticate.js'
import type { Database } from '../db/client.js'
import { queryOne, statement } from '../db/sql.js'
import type { Task } from '../tasks/schemas.js'
import { TASK_COLUMNS, TASK_TEXT_BYTES } from '../tasks/queries.js'

/** A change as clients receive it: the task's current state, or its tombstone. */
export type ChangeOut =
  | { seq: number, op: 'upsert', task: Task }
  | { seq: number, op: 'delete', id: string, deletedAt: string }

export interface ChangesOptions {
  /** At most this many changes. */
  limit: number
  /** And, after the first, only while the text read so far stays under this. */
  maxBytes: number
  /** False for a first sync, which has nothing to delete. */
  tombstones?: boolean
}

/** Changes after a seq, oldest first, each task at most once, in its latest state. */
export interface ChangePage {
  changes: ChangeOut[]
  hasMore: boolean
}

const hashTicket = (ticket: string) => createHash('sha256').update(ticket).digest('hex')

const POSITION = statement('select change_seq as "changeSeq", sync_floor_seq as "syncFloorSeq" from users where id = $1')
const LIVE_AFTER = `select t.seq, ${TASK_COLUMNS}, null::timestamptz as "deletedAt", ${TASK_TEXT_BYTES} as bytes
  from tasks t where t.user_id = $1 and t.seq > $2 order by t.seq limit $3`
const TOMBSTONES_AFTER = `select d.seq, d.entity_id, null::text, null::text, null::boolean, null::timestamptz,
  null::task_priority, null::timestamptz, null::text[], null::timestamptz, null::timestamptz, null::integer, d.deleted_at, 0
  from tombstones d where d.user_id = $1 and d.seq > $2 order by d.seq limit $3`
/**
 * The changes after $2, by seq: at most $3 of them, and only while the text before each stays under
 * $4 bytes (the first always comes): a page of large tasks ends early rather than loading tens of
 * megabytes.
 */
const upTo = (changes: string) => statement(`select * from (
    select c.*, sum(c.bytes) over (order by c.seq) - c.bytes as "bytesBefore" from (${changes}) c
  ) paged where paged."bytesBefore" < $4 order by paged.seq`)
/** Live tasks and tombstones: each task at most once, in its latest state. */
const CHANGES_AFTER = upTo(`(${LIVE_AFTER}) union all (${TOMBSTONES_AFTER}) order by seq limit $3`)
const LIVE_ONLY_AFTER = upTo(LIVE_AFTER)
/**
 * Drops the tombstones older than the retention. Each user's floor rises to their highest pruned
 * tombstone, so a cursor from before it gets a 410 instead of silently missing a delete.
 */
const PRUNE = statement(`
  with pruned as (
    delete from tombstones d where d.deleted_at < now() - make_interval(secs => $1)
    returning d.user_id, d.seq
  ), floors as (
    update users u set sync_floor_seq = greatest(u.sync_floor_seq, f.seq)
    from (select user_id, max(seq) as seq from pruned group by user_id) f
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

    /**
     * Up to `limit` changes after `seq`, oldest first: each task changed since, once, in its current
     * state, and each one deleted since (unless `tombstones` is false: a first sync has nothing to delete).
     */
    async changesAfter (userId: string, seq: number, { limit, maxBytes, tombstones = true }: ChangesOptions): Promise<ChangePage> {
      const rows = await db.query<Task & { seq: number, deletedAt: string | null, bytes: number, bytesBefore: number }>(
        tombstones ? CHANGES_AFTER : LIVE_ONLY_AFTER, [userId, seq, limit + 1, maxBytes])
      const page = rows.slice(0, limit)
      const last = page.at(-1)
      // More after this page: one row past the limit, or the bytes ran out before it.
      const hasMore = rows.length > limit || (last !== undefined && last.bytesBefore + last.bytes >= maxBytes)
      const changes = page.map(({ seq, deletedAt, bytes, bytesBefore, ...task }): ChangeOut => deletedAt === null
        ? { seq, op: 'upsert', task }
        : { seq, op: 'delete', id: task.id, deletedAt })
      return { changes, hasMore }
    },

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
