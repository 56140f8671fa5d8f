import { randomUUID } from 'node:crypto'
import { and, eq, isNull, sql } from 'drizzle-orm'
import type { Db } from '../db/client.js'
import { refreshTokens } from '../db/schema.js'
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

/**
 * Refresh-token families. A login starts a family; each refresh revokes the presented token and
 * issues its successor. A revoked token presented again means it was copied, so the whole family
 * is revoked: the thief and the victim both have to log in again (RFC 9700, section 4.14.2).
 */
export function sessionQueries (db: Db, keys: TokenKeys) {
  async function issue (tx: Db, userId: string, familyId: string): Promise<TokenPair> {
    const refreshToken = newRefreshToken()
    await tx.insert(refreshTokens).values({
      userId,
      familyId,
      tokenHash: hashToken(refreshToken),
      expiresAt: sql`now() + make_interval(days => ${keys.refreshTokenTtlDays})`,
    })
    return {
      accessToken: await signAccessToken(keys, userId),
      refreshToken,
      tokenType: 'Bearer',
      expiresIn: keys.accessTokenTtlSeconds,
    }
  }

  const revokeFamily = (tx: Db, familyId: string) => tx.update(refreshTokens)
    .set({ revokedAt: sql`now()` })
    .where(and(eq(refreshTokens.familyId, familyId), isNull(refreshTokens.revokedAt)))

  return {
    /** A new family, for a login or a registration. */
    start (userId: string): Promise<TokenPair> {
      return issue(db, userId, randomUUID())
    },

    async refresh (refreshToken: string): Promise<RefreshOutcome> {
      const tokenHash = hashToken(refreshToken)
      const outcome = await db.transaction(async (tx) => {
        // Revoke-and-check in one statement: of two concurrent refreshes with one token, exactly
        // one sees revoked_at IS NULL; the other takes the reuse branch below.
        const [current] = await tx.update(refreshTokens)
          .set({ revokedAt: sql`now()` })
          .where(and(eq(refreshTokens.tokenHash, tokenHash), isNull(refreshTokens.revokedAt)))
          .returning({
            userId: refreshTokens.userId,
            familyId: refreshTokens.familyId,
            expired: sql<boolean>`${refreshTokens.expiresAt} <= now()`,
          })
        if (current) {
          if (current.expired) return { ok: false, reason: 'expired' } as const
          return { ok: true, userId: current.userId, tokens: await issue(tx, current.userId, current.familyId) } as const
        }
        const [known] = await tx.select({ familyId: refreshTokens.familyId }).from(refreshTokens)
          .where(eq(refreshTokens.tokenHash, tokenHash))
        if (!known) return { ok: false, reason: 'unknown' } as const
        return { ok: false, reason: 'reused', familyId: known.familyId } as const
      })
      // The family is revoked outside the transaction above: had it run inside, a caller's
      // rollback could undo it. Revoking twice is harmless.
      if (!outcome.ok && outcome.reason === 'reused') {
        await revokeFamily(db, (outcome as { familyId: string }).familyId)
        return { ok: false, reason: 'reused' }
      }
      return outcome
    },

    /** Ends the session the token belongs to. Unknown or already revoked tokens are ignored. */
    async logout (refreshToken: string): Promise<void> {
      const [known] = await db.select({ familyId: refreshTokens.familyId }).from(refreshTokens)
        .where(eq(refreshTokens.tokenHash, hashToken(refreshToken)))
      if (known) await revokeFamily(db, known.familyId)
    },

    /** Every session of the user, as after a password change. */
    async revokeAll (userId: string): Promise<void> {
      await db.update(refreshTokens)
        .set({ revokedAt: sql`now()` })
        .where(and(eq(refreshTokens.userId, userId), isNull(refreshTokens.revokedAt)))
    },
  }
}

export type SessionQueries = ReturnType<typeof sessionQueries>
