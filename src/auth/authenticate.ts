import type { ExternalIdentity, UserQueries } from '../users/queries.js'
import type { ExternalVerifier } from './external.js'
import type { SessionQueries } from './sessions.js'
import { verifyAccessToken, type TokenKeys } from './tokens.js'
import type { UserCache } from './user-cache.js'

/** Who a valid token proves the caller to be. */
export interface Principal {
  userId: string
  /** The `sub` of an external identity provider's token; undefined for our own tokens. */
  authSubject?: string
  /** Our session (refresh-token family) the token belongs to; undefined for external tokens. */
  sessionId?: string
  /** When the token expires, in milliseconds since the epoch: an event stream ends then. */
  expiresAt: number
}

/** The user a token proves, or null for any invalid token. May throw a Problem (e.g. a 503). */
export interface Authenticate {
  (token: string): Promise<Principal | null>
  /** The same answer without waiting, when everything it needs is remembered; undefined otherwise. */
  remembered? (token: string): Principal | undefined
  /**
   * Whether a principal established earlier (an event ticket's) still stands: its token has not
   * expired, its user exists, its session has not ended.
   */
  stillValid (principal: Principal): Promise<boolean>
}

/** Tokens checked recently, by their exact text; more than this and the oldest are checked again. */
const MAX_VERIFIED = 10_000

type Verified = { kind: 'ours', userId: string, sessionId: string, expiresAt: number }
  | { kind: 'external', identity: ExternalIdentity, expiresAt: number }

export interface AuthenticateOptions {
  keys: TokenKeys
  users: UserQueries
  sessions: Pick<SessionQueries, 'isLive'>
  cache: UserCache
  /** An external identity provider's verifier, if one is configured. */
  external?: ExternalVerifier
}

/**
 * The authentication policy: our own tokens first (cheap to refuse when foreign), then the external
 * provider's, if any; a token outliving its user (account deleted) or its session (logged out, password
 * changed elsewhere, refresh token reused) is refused like any invalid one.
 *
 * A front end sends the same token on every request for its 15 minutes. A token's signature and
 * claims, once checked, give the same answer for the same text until it expires, so checked tokens
 * are remembered by their text and only the expiry is checked again: the JWT check was ~11% of the
 * server's CPU (issue 10). Whether the user still exists, and its session is live, is never
 * remembered here but in the UserCache, which hears when either changes on any process.
 */
export function authenticator ({ keys, users, sessions, cache, external }: AuthenticateOptions): Authenticate {
  const verified = new Map<string, Verified>()

  async function verify (token: string): Promise<Verified | null> {
    const known = verified.get(token)
    if (known !== undefined) {
      if (known.expiresAt > Date.now()) return known
      verified.delete(token)
    }
    const ours = await verifyAccessToken(keys, token)
    // Every token we issue names its session; one without (issued before sessions were named, long
    // expired) cannot be ended by a logout, so it is not accepted.
    let result: Verified | null = ours?.sessionId ? { kind: 'ours', ...ours, sessionId: ours.sessionId } : null
    if (result === null && external) {
      const identity = await external(token)
      if (identity !== null) result = { kind: 'external', identity, expiresAt: identity.expiresAt }
    }
    if (result !== null) {
      if (verified.size >= MAX_VERIFIED) verified.delete(verified.keys().next().value as string)
      verified.set(token, result)
    }
    return result
  }

  /** Our user still exists and the session is live: each asked once per process, then heard of. */
  const standing = async (userId: string, sessionId: string) =>
    await cache.exists(userId, () => users.exists(userId)) &&
    await cache.sessionLive(userId, sessionId, () => sessions.isLive(sessionId))

  const authenticate = (async (token: string) => {
    const checked = await verify(token)
    if (checked === null) return null
    if (checked.kind === 'ours') {
      if (!await standing(checked.userId, checked.sessionId)) return null
      return { userId: checked.userId, sessionId: checked.sessionId, expiresAt: checked.expiresAt }
    }
    const { identity } = checked
    const user = await cache.externalUser(identity, () => users.provisionExternal(identity))
    // The profile follows the provider's claims when they change: a write only when they differ.
    const email = identity.email ?? user.email
    const name = identity.name ?? user.name
    if (email !== user.email || name !== user.name) {
      const updated = await users.followProfile(user.id, email, name)
      if (updated) cache.updateExternal(identity, updated)
    }
    return { userId: user.id, authSubject: identity.subject, expiresAt: checked.expiresAt }
  }) as Authenticate
  /** Our own token, checked before, of a user and session known to stand: the common case, with no await at all. */
  authenticate.remembered = (token) => {
    const known = verified.get(token)
    if (known?.kind !== 'ours' || known.expiresAt <= Date.now() || !cache.isKnown(known.userId) || !cache.isLiveSession(known.sessionId)) return undefined
    return { userId: known.userId, sessionId: known.sessionId, expiresAt: known.expiresAt }
  }
  authenticate.stillValid = async (principal) => {
    if (principal.expiresAt <= Date.now()) return false
    // A provider's user has no session of ours: it stands while its token does and the user exists.
    if (principal.sessionId === undefined) return cache.exists(principal.userId, () => users.exists(principal.userId))
    return standing(principal.userId, principal.sessionId)
  }
  return authenticate
}
