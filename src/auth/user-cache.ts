import type { NoticeFeed } from '../events/feed.js'
import type { Notice } from '../events/notices.js'
import type { ExternalIdentity, User } from '../users/queries.js'

/** Beyond this many entries the oldest are dropped: a miss costs one query, never a wrong answer. */
const MAX_ENTRIES = 100_000

/** Insertion-ordered map with a bound: the oldest entry goes first. */
function boundedMap<K, V> (max: number) {
  const map = new Map<K, V>()
  return {
    map,
    set (key: K, value: V) {
      if (map.size >= max && !map.has(key)) map.delete(map.keys().next().value as K)
      map.set(key, value)
    },
  }
}

type ExternalUser = Pick<User, 'id' | 'email' | 'name'>

/**
 * Which users exist and which of our sessions are live, remembered so that a request with a valid
 * token costs no query to check that its user was not deleted, nor its session ended, meanwhile
 * (the user check doubled the database work of every request, issue 10).
 *
 * Safe across processes because deletions and ended sessions are heard on the notice feed, and only
 * while it is heard: an entry is added only while the feed is live, what can change unheard is dropped
 * when the feed is lost or restored, and a check that raced a notice (the epoch moved while its query
 * ran) is not kept. An ended session never lives again, so that answer is kept whatever happens.
 */
export function userCache (feed: NoticeFeed) {
  const known = boundedMap<string, true>(MAX_ENTRIES)
  const external = boundedMap<string, ExternalUser>(MAX_ENTRIES)
  /** Live sessions, by id, with their user. */
  const live = boundedMap<string, string>(MAX_ENTRIES)
  const ended = boundedMap<string, true>(MAX_ENTRIES)
  let epoch = 0

  const forgetAll = () => {
    known.map.clear()
    external.map.clear()
    live.map.clear()
    epoch++
  }
  const forget = (userId: string) => {
    known.map.delete(userId)
    for (const [key, user] of external.map) if (user.id === userId) external.map.delete(key)
    epoch++
  }
  /** Sessions of the notice ended: the one named is known ended; of a wider revocation, ask again. */
  const sessionsEnded = ({ userId, sessionId, except }: Extract<Notice, { kind: 'sessions' }>) => {
    if (sessionId !== undefined) {
      live.map.delete(sessionId)
      ended.set(sessionId, true)
    } else {
      for (const [id, owner] of live.map) if (owner === userId && id !== except) live.map.delete(id)
    }
    epoch++
  }
  feed.subscribe({
    notice (notice) {
      if (notice.kind === 'deleted') forget(notice.userId)
      else if (notice.kind === 'sessions') sessionsEnded(notice)
    },
    lost: forgetAll,
    restored: forgetAll,
  })

  /** Runs `load`; keeps what it found only if nothing could have changed it meanwhile. */
  async function remember<T> (load: () => Promise<T>, keep: (found: T) => void): Promise<T> {
    const started = epoch
    const found = await load()
    if (feed.live && epoch === started) keep(found)
    return found
  }

  return {
    /** True when the user is known to exist; false means "ask" (see `exists`). */
    isKnown: (userId: string): boolean => known.map.has(userId),

    /** Whether the user exists; `check` asks the database when the answer is not known. */
    async exists (userId: string, check: () => Promise<boolean>): Promise<boolean> {
      if (known.map.has(userId)) return true
      return remember(check, (found) => { if (found) known.set(userId, true) })
    },

    /** True when the session is known to be live; false means "ask" (see `sessionLive`). */
    isLiveSession: (sessionId: string): boolean => live.map.has(sessionId),

    /** Whether the session has not ended; `check` asks the database when the answer is not known. */
    async sessionLive (userId: string, sessionId: string, check: () => Promise<boolean>): Promise<boolean> {
      if (live.map.has(sessionId)) return true
      if (ended.map.has(sessionId)) return false
      return remember(check, (found) => {
        if (found) live.set(sessionId, userId)
        else ended.set(sessionId, true)
      })
    },

    /** The local user of an external identity; `provision` finds or creates it when not known. */
    async externalUser (identity: ExternalIdentity, provision: () => Promise<ExternalUser>): Promise<ExternalUser> {
      const key = `${identity.issuer}\n${identity.subject}`
      return external.map.get(key) ?? remember(provision, (user) => external.set(key, user))
    },

    /** After a write that changed the user (a followed profile), so the next request sees it. */
    updateExternal (identity: ExternalIdentity, user: ExternalUser): void {
      const key = `${identity.issuer}\n${identity.subject}`
      if (external.map.has(key)) external.set(key, user)
    },

    /** This process deleted the user: forget it now, before the notice comes back. */
    forget,
  }
}

export type UserCache = ReturnType<typeof userCache>
