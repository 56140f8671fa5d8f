import type { Sql } from './sql.js'

/** What a LISTEN subscriber hears. */
export interface ListenHandlers {
  /** The payload of a NOTIFY on the channel, from any process. */
  message (payload: string): void
  /** The listening connection is gone: notifications sent from now on are lost until `restored`. */
  lost (): void
  /** Listening again after a loss: what was sent meanwhile is gone, so catch up from the data. */
  restored (): void
}

export interface Database extends Sql {
  readonly kind: 'embedded' | 'postgres'
  /** Runs `work` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T> (work: (tx: Sql) => Promise<T>): Promise<T>
  /** Resolves when the database answers a trivial query; rejects otherwise. */
  ping (): Promise<void>
  /** Applies the committed migrations that have not run yet; running it again changes nothing. */
  migrate (): Promise<void>
  /**
   * Subscribes to NOTIFY on `channel`. Resolves once listening; returns the way to stop. The
   * embedded database is one process with no connection to lose: `lost` never fires there.
   */
  listen (channel: string, handlers: ListenHandlers): Promise<() => Promise<void>>
  /**
   * NOTIFY `channel` once per payload, in a transaction of its own. Never inside a write: a NOTIFY
   * serializes every notifying commit database-wide through its WAL flush (migration 0007).
   */
  notify (channel: string, payloads: string[]): Promise<void>
  close (): Promise<void>
  /** The connection pool's state, for metrics; absent on the embedded database, which has none. */
  poolStats? (): PoolStats
}

export interface PoolStats {
  /** The most connections the pool may open. */
  max: number
  /** Connections open now, idle or busy. */
  open: number
  inUse: number
  /** Queries waiting for a connection. */
  waiting: number
  /** Read connections open (pipeline mode, besides the pool). */
  readConnections: number
  /** Reads sent down them and not yet answered. */
  readsPending: number
}

/** Where the database layer reports what an operator should know; pino's logger fits. */
export interface WarnLog {
  warn (details: object, message: string): void
}
