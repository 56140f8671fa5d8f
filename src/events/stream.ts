import type { ServerResponse } from 'node:http'
import type { FastifyBaseLogger } from 'fastify'
import type { SyncCursors } from '../sync/cursor.js'
import type { SyncQueries } from '../sync/queries.js'
import { toChangeJson } from '../sync/schemas.js'
import type { Subscriber } from './hub.js'

const BATCH = 500

export interface ChangeStreamOptions {
  userId: string
  /** The last seq the client has; the stream sends what comes after. */
  fromSeq: number
  res: ServerResponse
  sync: SyncQueries
  cursors: SyncCursors
  log: FastifyBaseLogger
  heartbeatMs: number
}

/**
 * One client's `text/event-stream`. Every event's id is a sync cursor at that change, so a client
 * resumes with Last-Event-ID (or hands the id to /sync) and gets exactly what came after. Reads
 * are serialized: a wake during a read runs one more read after it, never two at once.
 */
export class ChangeStream implements Subscriber {
  readonly userId: string
  private lastSeq: number
  private reading = false
  private again = false
  private closed = false
  private readonly heartbeat: NodeJS.Timeout

  constructor (private readonly options: ChangeStreamOptions) {
    this.userId = options.userId
    this.lastSeq = options.fromSeq
    options.res.write('retry: 2000\n: connected\n\n')
    this.heartbeat = setInterval(() => this.write(': heartbeat\n\n'), options.heartbeatMs)
    this.heartbeat.unref()
  }

  wake (): void {
    if (this.closed) return
    if (this.reading) {
      this.again = true
      return
    }
    this.reading = true
    void this.drain().finally(() => { this.reading = false })
  }

  checkUser (): void {
    this.options.sync.position(this.userId).then((position) => {
      if (!position) this.end()
    }, () => { /* the database is away; the next notification checks again */ })
  }

  end (): void {
    if (this.closed) return
    this.closed = true
    clearInterval(this.heartbeat)
    this.options.res.end()
  }

  /** The connection is gone (client left); nothing more is written. */
  dispose (): void {
    this.closed = true
    clearInterval(this.heartbeat)
  }

  private write (text: string): void {
    if (!this.closed) this.options.res.write(text)
  }

  private async drain (): Promise<void> {
    const { sync, cursors, userId, log } = this.options
    try {
      do {
        this.again = false
        const changes = await sync.changesAfter(userId, this.lastSeq, BATCH)
        if (changes.length === 0) break
        for (const change of await sync.resolve(userId, changes)) {
          const json = toChangeJson(change)
          const data = json.op === 'upsert' ? json.task : { id: json.id, deletedAt: json.deletedAt }
          this.write(`id: ${cursors.mint(userId, { mode: 'delta', seq: change.seq })}\nevent: task.${json.op}\ndata: ${JSON.stringify(data)}\n\n`)
        }
        this.lastSeq = changes.at(-1)!.seq
        if (changes.length === BATCH) this.again = true
      } while (this.again && !this.closed)
    } catch (error) {
      // The database is away: try again shortly; the log still holds everything.
      log.warn({ message: (error as Error).message }, 'event stream could not read the change log; retrying')
      setTimeout(() => this.wake(), 1_000).unref()
    }
  }
}
