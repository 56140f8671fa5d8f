import type { NoticeFeed } from '../events/feed.js'
import type { ExternalIdentity, User } from '../users/queries.js'

/** Beyond this many users the oldest entries are dropped: a miss costs one query, never a wrong answer. */
const MAX_ENTRIES = 100_000

/** Insertion-ordered set with a bound: the oldest entry goes first. */
function boundedSet<K, V> (max: number) {
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
 * Which users exist, remembered so that a request with a valid token costs no query to check that its
 * user was not deleted meanwhile (that query doubled the database work of every request, issue 10).
 *
 * Safe across processes because account deletion is heard on the notice feed, and only while it is
 * heard: an entry is added only while the feed is live, everything is dropped when the feed is lost
 * or restored, and a check that raced a deletion (the epoch moved while its query ran) is not kept.
 */
export function userCache (feed: NoticeFeed) {
  const known = boundedSet<string, true>(MAX_ENTRIES)
  const external = boundedSet<string, ExternalUser>(MAX_ENTRIES)
  let epoch = 0

  const forgetAll = () => {
    known.map.clear()
    external.map.clear()
    epoch++
  }
  const forget = (userId: string) => {
    known.map.delete(userId)
    for (const [key, user] of external.map) if (user.id === userId) external.map.delete(key)
    epoch++
  }
  feed.subscribe({
    notice (notice) { if (notice.kind === 'deleted') forget(notice.userId) },
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
