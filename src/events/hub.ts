import type { FastifyBaseLogger } from 'fastify'
import type { Database } from '../db/client.js'

export const CHANGES_CHANNEL = 'taskbase_changes'

/** What the hub needs of an open stream. */
export interface Subscriber {
  readonly userId: string
  /** The user's log has grown: read it. */
  wake (): void
  /** The user was deleted (or may have been): end if so. */
  checkUser (): void
  /** The server is shutting down. */
  end (): void
}

/**
 * Routes change notifications to the open streams of their user. One LISTEN per process, opened
 * with the first stream: the trigger's NOTIFY '<userId>:<seq>' wakes only that user's streams,
 * which then read the log themselves; so a notification lost with a connection costs nothing but
 * the catch-up that follows the reconnect.
 */
export function eventHub (database: Database, log: FastifyBaseLogger) {
  const byUser = new Map<string, Set<Subscriber>>()
  let listening: Promise<() => Promise<void>> | undefined

  const each = (fn: (s: Subscriber) => void) => { for (const set of byUser.values()) for (const s of set) fn(s) }

  const onMessage = (payload: string) => {
    const [userId, what] = payload.split(':')
    const subscribers = userId === undefined ? undefined : byUser.get(userId)
    if (!subscribers) return
    for (const s of subscribers) {
      if (what === 'deleted') s.checkUser()
      else s.wake()
    }
  }

  return {
    /** Resolves once notifications for `subscriber` will arrive; returns the way to unsubscribe. */
    async add (subscriber: Subscriber): Promise<() => void> {
      listening ??= database.listen(CHANGES_CHANNEL, onMessage, () => {
        log.info('LISTEN connection restored; streams catch up from the change log')
        each((s) => { s.wake(); s.checkUser() })
      })
      try {
        await listening
      } catch (error) {
        listening = undefined
        throw error
      }
      let set = byUser.get(subscriber.userId)
      if (!set) byUser.set(subscriber.userId, set = new Set())
      set.add(subscriber)
      return () => {
        set.delete(subscriber)
        if (set.size === 0 && byUser.get(subscriber.userId) === set) byUser.delete(subscriber.userId)
      }
    },

    get size (): number {
      let n = 0
      for (const set of byUser.values()) n += set.size
      return n
    },

    /** Ends every stream (before the server closes, or it would wait for them) and stops listening. */
    async close (): Promise<void> {
      each((s) => s.end())
      byUser.clear()
      const stop = await listening?.catch(() => undefined)
      listening = undefined
      await stop?.()
    },
  }
}

export type EventHub = ReturnType<typeof eventHub>
