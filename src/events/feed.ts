import type { FastifyBaseLogger } from 'fastify'
import type { Database } from '../db/client.js'
import { changedNotice, CHANGES_CHANNEL, parseNotice, type Notice } from './notices.js'

/** How long announcements gather before one NOTIFY carries them all. */
const ANNOUNCE_DELAY_MS = 5

export interface NoticeListener {
  notice (notice: Notice): void
  /** Notices may be missed from now on (the LISTEN connection is gone): trust no cache built on them. */
  lost (): void
  /** Listening again; what was sent meanwhile is gone, so catch up from the data. */
  restored (): void
}

/**
 * The process's one LISTEN on the changes channel, from start to close, shared by whoever needs to
 * hear other processes: the event streams (a user's log grew, a session ended) and the cache of
 * known users (an account was deleted).
 */
export function noticeFeed (database: Database, log: FastifyBaseLogger) {
  const listeners = new Set<NoticeListener>()
  let live = false
  let stop: (() => Promise<void>) | undefined
  const changed = new Set<string>()
  /** A flush is scheduled or its NOTIFY is under way: announcements wait for the next one. */
  let flushing = false

  /**
   * One NOTIFY statement for every user announced in the last few milliseconds: a statement per
   * write would add a round trip per write (and each costs a system call this busy process feels).
   */
  const flush = () => {
    const payloads = [...changed].map(changedNotice)
    changed.clear()
    database.notify(CHANGES_CHANNEL, payloads).catch((error: Error) => {
      // Streams notice the change anyway within their poll (hub.ts); nothing is lost.
      log.warn({ message: error.message }, 'could not announce task changes')
    }).finally(() => {
      // One statement at a time on the connection; what came meanwhile goes next.
      if (changed.size > 0) setTimeout(flush, ANNOUNCE_DELAY_MS)
      else flushing = false
    })
  }

  return {
    /** True while notices are arriving: a cache may rely on hearing of a change only then. */
    get live (): boolean { return live },

    /**
     * Tells every process that `userId`'s change log grew. Called after the write commits; a NOTIFY
     * inside the write would serialize all writers (migration 0007).
     */
    announce (userId: string): void {
      changed.add(userId)
      if (!flushing) {
        flushing = true
        setTimeout(flush, ANNOUNCE_DELAY_MS)
      }
    },

    /**
     * Hands a notice this process has just sent (in a transaction that committed) to its own listeners
     * at once, without waiting for it to come back over LISTEN: a logout answered here is in force
     * here before its answer leaves. Hearing it again later changes nothing.
     */
    echo (payload: string): void {
      const notice = parseNotice(payload)
      if (notice) for (const l of listeners) l.notice(notice)
    },

    subscribe (listener: NoticeListener): () => void {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    },

    async start (): Promise<void> {
      stop = await database.listen(CHANGES_CHANNEL, {
        message (payload) {
          const notice = parseNotice(payload)
          if (notice) for (const l of listeners) l.notice(notice)
        },
        lost () {
          live = false
          for (const l of listeners) l.lost()
        },
        restored () {
          live = true
          log.info('LISTEN connection restored; streams catch up from the change log')
          for (const l of listeners) l.restored()
        },
      })
      live = true
    },

    async close (): Promise<void> {
      live = false
      await stop?.()
      stop = undefined
    },
  }
}

export type NoticeFeed = ReturnType<typeof noticeFeed>
