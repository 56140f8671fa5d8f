import { createHash, randomBytes } from 'node:crypto'
import type { Principal } from '../auth/authenticate.js'
import type { Database } from '../db/client.js'
import { queryOne, statement } from '../db/sql.js'

/** How long a ticket can be used, once. */
export const TICKET_SECONDS = 60

const hashTicket = (ticket: string) => createHash('sha256').update(ticket).digest('hex')

const INSERT = statement(`insert into event_tickets (ticket_hash, user_id, session_id, token_expires_at, expires_at)
  values ($1, $2, $3, $4::timestamptz, now() + make_interval(secs => $5))`)
const USE = statement(`delete from event_tickets where ticket_hash = $1 and expires_at > now()
  returning user_id as "userId", session_id as "sessionId", token_expires_at as "tokenExpiresAt"`)
const PRUNE = statement('delete from event_tickets where expires_at <= now()')

/**
 * Single-use tickets for `GET /events?ticket=`: a browser's EventSource cannot send headers, so it
 * trades its access token for one first. A ticket stands for the principal that bought it (its
 * stream ends with that token's session and expiry); only its hash is stored.
 */
export function ticketQueries (db: Database) {
  return {
    async create (principal: Principal): Promise<string> {
      const ticket = randomBytes(32).toString('base64url')
      await db.query(INSERT, [hashTicket(ticket), principal.userId, principal.sessionId ?? null,
        new Date(principal.expiresAt).toISOString(), TICKET_SECONDS])
      return ticket
    },

    /** The principal of a ticket, once: the ticket is deleted as it is used. Its session is the caller's to check. */
    async use (ticket: string): Promise<Principal | undefined> {
      const row = await queryOne<{ userId: string, sessionId: string | null, tokenExpiresAt: string | null }>(db, USE, [hashTicket(ticket)])
      if (!row) return undefined
      // Tickets bought before they carried the token's expiry: the longest an access token lives.
      const expiresAt = row.tokenExpiresAt === null ? Date.now() + 15 * 60_000 : Date.parse(row.tokenExpiresAt)
      return { userId: row.userId, sessionId: row.sessionId ?? undefined, expiresAt }
    },

    /** Run from a timer, never in a request. */
    async prune (): Promise<void> {
      await db.query(PRUNE)
    },
  }
}

export type TicketQueries = ReturnType<typeof ticketQueries>
