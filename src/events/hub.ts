import type { FastifyBaseLogger } from 'fastify'
import type { Database } from '../db/client.js'
import { statement } from '../db/sql.js'
import type { SyncQueries } from '../sync/queries.js'
import type { NoticeFeed } from './feed.js'
import type { ChangeStream, EndReason } from './stream.js'

/** Changes read from the log at once; a longer backlog is read page after page. */
export const PAGE = 500
/**
 * And no more text than this per read: a stream waiting for its client to read resumes from a fresh
 * read, so a page is what one drain of a slow client can cost.
 */
export const PAGE_BYTES = 128 * 1024

const LOG_HEADS = statement('select id, change_seq as "changeSeq" from users where id = any($1::uuid[])')

/** What the hub needs of the log: `sync` queries, or a test's stand-in that controls their timing. */
export type LogReader = Pick<SyncQueries, 'changesAfter'>

/**
 * One user's open streams, and the one reader of that user's log that serves them all: a change
 * costs one read per user and process, however many streams the user has open (it cost one per
 * stream, issue 11).
 *
 * Wake-ups are never lost: a wake during a read marks `again`, and the loop checks it after every
 * read, an empty one included, before it stops; `reading` is cleared in the same synchronous step
 * as that last check.
 */
class UserReader {
  readonly streams = new Set<ChangeStream>()
  private reading = false
  private again = false

  constructor (private readonly userId: string, private readonly log: LogReader,
    private readonly logger: FastifyBaseLogger) {}

  wake (): void {
    if (this.reading) {
      this.again = true
      return
    }
    this.reading = true
    void this.drain()
  }

  private async drain (): Promise<void> {
    try {
      do {
        this.again = false
        // Streams waiting for their socket to drain are left where they are; 'drain' wakes us again.
        const behind = [...this.streams].filter((s) => !s.paused && !s.ended)
        if (behind.length === 0) continue
        const from = Math.min(...behind.map((s) => s.lastSeq))
        const { changes, hasMore } = await this.log.changesAfter(this.userId, from, { limit: PAGE, maxBytes: PAGE_BYTES })
        if (changes.length === 0) continue
        const through = changes.at(-1)!.seq
        for (const stream of behind) stream.deliver(changes, through)
        if (hasMore) this.again = true
      } while (this.again && this.streams.size > 0)
    } catch (error) {
      // The database is away: read again shortly; the log still holds everything.
      this.logger.warn({ message: (error as Error).message }, 'event streams could not read the change log; retrying')
      setTimeout(() => this.wake(), 1_000).unref()
    } finally {
      this.reading = false
    }
  }

  /** Whether some stream has not been sent everything up to `seq`. */
  isBehind (seq: number): boolean {
    for (const stream of this.streams) if (stream.lastSeq < seq) return true
    return false
  }

  /** Ends the streams of every session, of `only` that one, or of every one but `except`. */
  endAll (reason: EndReason, { only, except }: { only?: string, except?: string } = {}): void {
    for (const stream of this.streams) {
      if ((only === undefined || stream.sessionId === only) && (except === undefined || stream.sessionId !== except)) stream.end(reason)
    }
  }
}

export interface EventHubOptions {
  database: Database
  feed: NoticeFeed
  log: LogReader
  logger: FastifyBaseLogger
  /** Streams one user may hold open at once in this process. */
  maxStreamsPerUser: number
  /** How often every user with a stream is checked against the log, for changes no notice announced. */
  pollMs?: number
}

/**
 * Routes notices to the open streams of their user: a change wakes the user's reader; a deleted
 * account, an ended session or all sessions revoked end the streams concerned.
 *
 * Notices can be missed (a lost LISTEN connection; a change made by hand, which no process
 * announces), so every `pollMs`, and at once when a lost connection comes back, one query reads the
 * log position of every user with a stream here: readers behind it catch up, and the streams of
 * users who are gone end.
 */
export function eventHub ({ database, feed, log, logger, maxStreamsPerUser, pollMs = 5_000 }: EventHubOptions) {
  const readers = new Map<string, UserReader>()
  let closing = false

  async function checkAll (): Promise<void> {
    const userIds = [...readers.keys()]
    if (userIds.length === 0) return
    try {
      const heads = new Map((await database.query<{ id: string, changeSeq: number }>(LOG_HEADS, [userIds])).map((r) => [r.id, r.changeSeq]))
      for (const [userId, reader] of readers) {
        const head = heads.get(userId)
        if (head === undefined) reader.endAll('deleted')
        else if (reader.isBehind(head)) reader.wake()
      }
    } catch (error) {
      logger.warn({ message: (error as Error).message }, 'could not check the change log of open event streams; retrying')
    }
  }
  const poll = setInterval(() => void checkAll(), pollMs)
  poll.unref()

  const unsubscribe = feed.subscribe({
    notice (notice) {
      const reader = readers.get(notice.userId)
      if (!reader) return
      if (notice.kind === 'change') reader.wake()
      else if (notice.kind === 'webhook-disabled') for (const stream of reader.streams) stream.announce('webhook.disabled', notice.webhook)
      else if (notice.kind === 'deleted') reader.endAll('deleted')
      else if (notice.kind === 'sessions') reader.endAll(notice.sessionId === undefined ? 'revoked' : 'logout', { only: notice.sessionId, except: notice.except })
    },
    lost () {},
    restored () { void checkAll() },
  })

  return {
    maxStreamsPerUser,

    /** Whether the user may open one more stream now. */
    hasRoomFor (userId: string): boolean {
      return !closing && (readers.get(userId)?.streams.size ?? 0) < maxStreamsPerUser
    },

    /**
     * Registers a stream (made by `make`, which is given the callbacks it needs) and reads what it
     * has missed. Call only after `hasRoomFor`, in the same tick.
     */
    add (userId: string, make: (callbacks: { onDrain: () => void, onEnd: () => void }) => ChangeStream): ChangeStream {
      let reader = readers.get(userId)
      if (!reader) readers.set(userId, reader = new UserReader(userId, log, logger))
      const owner = reader
      const stream = make({
        onDrain: () => owner.wake(),
        onEnd: () => {
          owner.streams.delete(stream)
          if (owner.streams.size === 0 && readers.get(userId) === owner) readers.delete(userId)
        },
      })
      if (!stream.ended) owner.streams.add(stream)
      owner.wake()
      return stream
    },

    /** Open streams, and the output they hold that their clients have not taken yet. */
    stats (): { open: number, bufferedBytes: number } {
      let open = 0
      let bufferedBytes = 0
      for (const reader of readers.values()) {
        for (const stream of reader.streams) {
          open++
          bufferedBytes += stream.buffered
        }
      }
      return { open, bufferedBytes }
    },

    /** Ends every stream (before the server closes, or it would wait for them). */
    close (): void {
      closing = true
      clearInterval(poll)
      unsubscribe()
      for (const reader of [...readers.values()]) reader.endAll('shutdown')
      readers.clear()
    },
  }
}

export type EventHub = ReturnType<typeof eventHub>
