import { randomUUID } from 'node:crypto'
import type { Database } from '../db/client.js'
import { queryOne, statement, type Sql } from '../db/sql.js'
import { CHANGES_CHANNEL, sessionsNotice } from '../events/notices.js'
import { hashToken, newRefreshToken, signAccessToken, type TokenKeys } from './tokens.js'

export interface TokenPair {
  accessToken: string
  refreshToken: string
  tokenType: 'Bearer'
  /** Seconds until the access token expires. */
  expiresIn: number
}

export type RefreshOutcome =
  | { ok: true, userId: string, tokens: TokenPair }
  | { ok: false, reason: 'unknown' | 'expired' | 'reused' }

const INSERT = statement(`insert into refresh_tokens (user_id, family_id, token_hash, expires_at)
  values ($1, $2, $3, now() + make_interval(days => $4))`)
const FIND = statement('select user_id as "userId", family_id as "familyId" from refresh_tokens where token_hash = $1')
/** Revoke-and-check in one statement: a token already revoked (rotated, logged out) is not returned. */
const ROTATE = statement(`update refresh_tokens set revoked_at = now() where token_hash = $1 and revoked_at is null
  returning expires_at <= now() as expired`)
const REVOKE_FAMILY = statement('update refresh_tokens set revoked_at = now() where family_id = $1 and revoked_at is null')
const REVOKE_USER = statement('update refresh_tokens set revoked_at = now() where user_id = $1 and revoked_at is null')
const NOTIFY = statement('select pg_notify($1, $2)')
/**
 * One user's session changes (refresh, logout, revoke-all) take turns: a refresh that commits while
 * a logout revokes the family would otherwise leave its new token valid (the logout's UPDATE cannot
 * see a row inserted after it began). The lock is transaction-scoped, so poolers are fine with it.
 */
const LOCK_USER_SESSIONS = statement('select pg_advisory_xact_lock(1702, hashtext($1)) as locked')

/**
 * Refresh-token families. A login starts a family, the session; each refresh revokes the presented
 * token and issues its successor. A revoked token presented again means it was copied, so the
 * whole family is revoked: the thief and the victim both have to sign in again (RFC 9700,
 * section 4.14.2). Each revocation also tells the user's open event streams to end (events/notices.ts).
 */
export function sessionQueries (db: Database, keys: TokenKeys) {
  async function issue (sql: Sql, userId: string, familyId: string): Promise<TokenPair> {
    const refreshToken = newRefreshToken()
    await sql.query(INSERT, [userId, familyId, hashToken(refreshToken), keys.refreshTokenTtlDays])
    return {
      accessToken: await signAccessToken(keys, userId, familyId),
      refreshToken,
      tokenType: 'Bearer',
      expiresIn: keys.accessTokenTtlSeconds,
    }
  }

  /** The token's session, with the user's session lock held until the transaction ends. */
  async function lockSessionOf (tx: Sql, refreshToken: string) {
    const known = await queryOne<{ userId: string, familyId: string }>(tx, FIND, [hashToken(refreshToken)])
    if (known) await tx.query(LOCK_USER_SESSIONS, [known.userId])
    return known
  }

  return {
    /** A new session, for a login or a registration. */
    start (userId: string): Promise<TokenPair> {
      return issue(db, userId, randomUUID())
    },

    refresh (refreshToken: string): Promise<RefreshOutcome> {
      return db.transaction(async (tx) => {
        const known = await lockSessionOf(tx, refreshToken)
        if (!known) return { ok: false, reason: 'unknown' }
        // Of two concurrent refreshes with one token, exactly one sees it unrevoked.
        const current = await queryOne<{ expired: boolean }>(tx, ROTATE, [hashToken(refreshToken)])
        if (!current) {
          // Reuse: the family is revoked, committed with the answer (a 401 is not a rollback), and
          // every stream of the user ends: which of its sessions the copy came from is unknowable.
          await tx.query(REVOKE_FAMILY, [known.familyId])
          await tx.query(NOTIFY, [CHANGES_CHANNEL, sessionsNotice(known.userId)])
          return { ok: false, reason: 'reused' }
        }
        if (current.expired) return { ok: false, reason: 'expired' }
        return { ok: true, userId: known.userId, tokens: await issue(tx, known.userId, known.familyId) }
      })
    },

    /** Ends the session the token belongs to. Unknown or already revoked tokens are ignored. */
    async logout (refreshToken: string): Promise<void> {
      await db.transaction(async (tx) => {
        const known = await lockSessionOf(tx, refreshToken)
        if (!known) return
        await tx.query(REVOKE_FAMILY, [known.familyId])
        await tx.query(NOTIFY, [CHANGES_CHANNEL, sessionsNotice(known.userId, known.familyId)])
      })
    },

    /** Every session of the user, as after a password change. */
    async revokeAll (userId: string): Promise<void> {
      await db.transaction(async (tx) => {
        await tx.query(LOCK_USER_SESSIONS, [userId])
        await tx.query(REVOKE_USER, [userId])
        await tx.query(NOTIFY, [CHANGES_CHANNEL, sessionsNotice(userId)])
      })
    },
  }
}

export type SessionQueries = ReturnType<typeof sessionQueries>
