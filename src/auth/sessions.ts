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

/**
 * Why a refresh was refused: an unknown token; an expired one; a rotated token presented again while
 * its session lived (`reused`: a copy, so the session is now ended); or a token of a session that had
 * already ended (`ended`: logged out, password changed, or ended for reuse before).
 */
export type RefreshOutcome =
  | { ok: true, userId: string, tokens: TokenPair }
  | { ok: false, reason: 'unknown' | 'expired' | 'reused' | 'ended' }

const INSERT = statement(`insert into refresh_tokens (user_id, family_id, token_hash, expires_at)
  values ($1, $2, $3, now() + make_interval(days => $4))`)
const FIND = statement('select user_id as "userId", family_id as "familyId" from refresh_tokens where token_hash = $1')
/** Revoke-and-check in one statement: a token already revoked (rotated, logged out) is not returned. */
const ROTATE = statement(`update refresh_tokens set revoked_at = now() where token_hash = $1 and revoked_at is null
  returning expires_at <= now() as expired`)
const REVOKE_FAMILY = statement('update refresh_tokens set revoked_at = now() where family_id = $1 and revoked_at is null')
/** Every session of $1 but $2 (null: all of them). */
const REVOKE_USER_EXCEPT = statement(`update refresh_tokens set revoked_at = now()
  where user_id = $1 and revoked_at is null and family_id is distinct from $2::uuid`)
/** A session lives while one of its refresh tokens is unrevoked: rotation revokes one and issues the next. */
const LIVE = statement('select exists (select 1 from refresh_tokens where family_id = $1 and revoked_at is null) as live')
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
 * section 4.14.2). Each revocation is announced (events/notices.ts): every process then refuses the
 * ended sessions' access tokens and ends their event streams.
 */
export interface SessionQueryOptions {
  /** Told each session notice this process sent, once its transaction committed (NoticeFeed.echo). */
  sent?: (payload: string) => void
}

export function sessionQueries (db: Database, keys: TokenKeys, { sent = () => {} }: SessionQueryOptions = {}) {
  /** Runs `work` in a transaction; the session notices it collected are echoed once it committed. */
  async function announcing<T> (work: (tx: Sql, notify: (payload: string) => Promise<void>) => Promise<T>): Promise<T> {
    const payloads: string[] = []
    const result = await db.transaction((tx) => work(tx, async (payload) => {
      await tx.query(NOTIFY, [CHANGES_CHANNEL, payload])
      payloads.push(payload)
    }))
    for (const payload of payloads) sent(payload)
    return result
  }

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
      return announcing(async (tx, notify) => {
        const known = await lockSessionOf(tx, refreshToken)
        if (!known) return { ok: false, reason: 'unknown' }
        // Of two concurrent refreshes with one token, exactly one sees it unrevoked.
        const current = await queryOne<{ expired: boolean }>(tx, ROTATE, [hashToken(refreshToken)])
        if (!current) {
          // Revoked already: by the end of its session (nothing more to do), or by a rotation while
          // the session goes on, which makes this a copy.
          if (!(await queryOne<{ live: boolean }>(tx, LIVE, [known.familyId]))!.live) return { ok: false, reason: 'ended' }
          // Reuse: the family is revoked, committed with the answer (a 401 is not a rollback), and
          // every stream of the user ends: which of its sessions the copy came from is unknowable.
          await tx.query(REVOKE_FAMILY, [known.familyId])
          await notify(sessionsNotice(known.userId))
          return { ok: false, reason: 'reused' }
        }
        if (current.expired) return { ok: false, reason: 'expired' }
        return { ok: true, userId: known.userId, tokens: await issue(tx, known.userId, known.familyId) }
      })
    },

    /** Ends the session the token belongs to. Unknown or already revoked tokens are ignored. */
    async logout (refreshToken: string): Promise<void> {
      await announcing(async (tx, notify) => {
        const known = await lockSessionOf(tx, refreshToken)
        if (!known) return
        await tx.query(REVOKE_FAMILY, [known.familyId])
        await notify(sessionsNotice(known.userId, { only: known.familyId }))
      })
    },

    /**
     * Ends every session of the user but `keep` (the one that changed the password goes on; undefined:
     * all of them). Every process hears it (the notice goes out with the commit) and refuses those
     * sessions' access tokens from then on.
     */
    async revokeOthers (userId: string, keep: string | undefined): Promise<void> {
      await announcing(async (tx, notify) => {
        await tx.query(LOCK_USER_SESSIONS, [userId])
        await tx.query(REVOKE_USER_EXCEPT, [userId, keep ?? null])
        await notify(sessionsNotice(userId, { except: keep }))
      })
    },

    /** Whether the session has not ended. Asked once per session and process (see user-cache.ts). */
    isLive: async (sessionId: string): Promise<boolean> => (await queryOne<{ live: boolean }>(db, LIVE, [sessionId]))!.live,
  }
}

export type SessionQueries = ReturnType<typeof sessionQueries>
