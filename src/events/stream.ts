import type { ServerResponse } from 'node:http'
import type { SyncCursors } from '../sync/cursor.js'
import type { ChangeOut } from '../sync/queries.js'

/**
 * A stream whose unsent output passes this is ended: a client that does not read cannot make the
 * server hold its events. It resumes with Last-Event-ID and misses nothing.
 */
export const MAX_BACKLOG_BYTES = 1024 * 1024

/** Why a stream ends, as the client is told in a last `reauth` event when it should sign in again. */
export type EndReason = 'expired' | 'logout' | 'revoked' | 'deleted' | 'backlog' | 'shutdown'

export interface ChangeStreamOptions {
  userId: string
  /** Our session the stream was opened with; undefined for an external provider's token. */
  sessionId: string | undefined
  /** The last seq the client has; the stream sends what comes after. */
  fromSeq: number
  /** When the credentials it was opened with expire (ms since the epoch): the stream ends then. */
  expiresAt: number
  res: ServerResponse
  cursors: SyncCursors
  heartbeatMs: number
  /** Called when the stream can take more after having been full, so its user's log is read again. */
  onDrain: () => void
  /** Called once when the stream has ended, whatever the cause. */
  onEnd: () => void
}

/**
 * One client's `text/event-stream`. Every event's id is a sync cursor at that change, so a client
 * resumes with Last-Event-ID (or hands the id to /sync) and gets exactly what came after. It never
 * reads the log itself: its user's reader (hub.ts) reads once for all the user's streams and hands
 * each the changes it has not seen.
 */
export class ChangeStream {
  readonly userId: string
  readonly sessionId: string | undefined
  /** The last seq this client has been sent (or did not need). */
  lastSeq: number
  /** Output is waiting for the socket: nothing more is written until it drains. */
  paused = false
  private closed = false
  private readonly heartbeat: NodeJS.Timeout
  private readonly expiry: NodeJS.Timeout

  constructor (private readonly options: ChangeStreamOptions) {
    this.userId = options.userId
    this.sessionId = options.sessionId
    this.lastSeq = options.fromSeq
    const { res } = options
    res.on('drain', () => {
      if (!this.paused || this.closed) return
      this.paused = false
      options.onDrain()
    })
    res.on('close', () => this.dispose())
    this.write('retry: 2000\n: connected\n\n')
    this.heartbeat = setInterval(() => this.write(': heartbeat\n\n'), options.heartbeatMs)
    this.heartbeat.unref()
    // setTimeout takes at most 2^31-1 ms (24.8 days); tokens live far shorter.
    this.expiry = setTimeout(() => this.end('expired'), Math.min(Math.max(0, options.expiresAt - Date.now()), 2 ** 31 - 1))
    this.expiry.unref()
  }

  get ended (): boolean {
    return this.closed
  }

  /** Bytes written but not yet taken by the socket. */
  get buffered (): number {
    return this.closed ? 0 : this.options.res.writableLength
  }

  /**
   * Sends the changes after this stream's position, oldest first; `throughSeq` is the last seq the
   * page read. Stops at a full socket buffer (and waits for 'drain'), so at most one page is ever
   * buffered for a client that reads slowly.
   */
  deliver (changes: ChangeOut[], throughSeq: number): void {
    if (this.closed || this.paused || throughSeq <= this.lastSeq) return
    const { cursors, userId } = this.options
    for (const change of changes) {
      if (change.seq <= this.lastSeq) continue
      const data = change.type === 'reminder'
        ? change.reminder
        : change.op === 'delete' ? { id: change.id, deletedAt: change.deletedAt } : change.type === 'task' ? change.task : change.project
      const id = cursors.mint(userId, { seq: change.seq })
      const flowing = this.write(`id: ${id}\nevent: ${change.type}.${change.op}\ndata: ${JSON.stringify(data)}\n\n`)
      this.lastSeq = change.seq
      if (this.closed) return
      if (!flowing) {
        this.paused = true
        return
      }
    }
    this.lastSeq = throughSeq
  }

  /**
   * An event that is not a change of the log (`webhook.disabled`): no `id`, so the client's
   * Last-Event-ID stays at the last change.
   */
  announce (event: string, data: unknown): void {
    this.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
  }

  /**
   * Ends the stream. Where the client should come back with fresh credentials (its token expired,
   * its session ended) a last `reauth` event says so; it resumes with Last-Event-ID.
   */
  end (reason: EndReason): void {
    if (this.closed) return
    if (reason !== 'deleted' && reason !== 'shutdown') {
      this.write(`event: reauth\ndata: ${JSON.stringify({ reason })}\n\n`, { force: true })
    }
    this.dispose()
    this.options.res.end()
  }

  /** The connection is gone (client left, or ended above); nothing more is written. */
  private dispose (): void {
    if (this.closed) return
    this.closed = true
    clearInterval(this.heartbeat)
    clearTimeout(this.expiry)
    this.options.onEnd()
  }

  /** False when the socket's buffer is full. A backlog past the bound ends the stream. */
  private write (text: string, { force = false } = {}): boolean {
    if (this.closed) return false
    const { res } = this.options
    const flowing = res.write(text)
    if (!force && res.writableLength > MAX_BACKLOG_BYTES) this.end('backlog')
    return flowing
  }
}
