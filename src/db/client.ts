import { mkdir } from 'node:fs/promises'
import { PGlite } from '@electric-sql/pglite'
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres'
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator'
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import * as schema from './schema.js'

/** PGlite, node-postgres and a transaction on either all fit this type. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>

export interface Database {
  readonly kind: 'embedded' | 'postgres'
  readonly db: Db
  /** Resolves when the database answers a trivial query; rejects otherwise. */
  ping (): Promise<void>
  /** Applies the committed migrations that have not run yet; running it again changes nothing. */
  migrate (): Promise<void>
  /**
   * Calls `onMessage` with the payload of every NOTIFY on `channel`, from any process. After a
   * lost listening connection is replaced, `onReconnect` runs: notifications sent meanwhile are
   * gone, so listeners catch up from the data. Resolves once listening; returns the way to stop.
   */
  listen (channel: string, onMessage: (payload: string) => void, onReconnect: () => void): Promise<() => Promise<void>>
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
}

// Resolves to <root>/src/db/migrations from both src/db (tsx) and dist/db (built).
const migrationsFolder = fileURLToPath(new URL('../../src/db/migrations', import.meta.url))

/** Any constant will do, as long as nothing else on the database uses it. */
const MIGRATION_LOCK_KEY = 0x7a5b_da5e

/**
 * Extensions of the embedded database. PGlite must be given them on every open, not only the
 * first: without pg_trgm loaded, writes to the indexed tasks table fail.
 */
export const pgliteExtensions = { pg_trgm }

/** Opens PGlite on `dataDir` (created if missing), or in memory when `dataDir` is undefined. */
export async function openEmbedded (dataDir: string | undefined): Promise<Database> {
  if (dataDir !== undefined) await mkdir(dataDir, { recursive: true })
  const client = await PGlite.create(dataDir, { extensions: pgliteExtensions })
  const db = drizzlePglite({ client, schema }) as unknown as Db
  return {
    kind: 'embedded',
    db,
    async ping () { await client.query('select 1') },
    async migrate () { await migratePglite(drizzlePglite({ client }), { migrationsFolder }) },
    // In-process: PGlite delivers its own NOTIFYs to its listeners, and there is no connection to lose.
    async listen (channel, onMessage) { return client.listen(channel, onMessage) },
    async close () { if (!client.closed) await client.close() },
  }
}

/** Where the database layer reports what an operator should know; pino's logger fits. */
export interface WarnLog {
  warn (details: object, message: string): void
}

export interface PostgresOptions {
  readonly url: string
  /** For LISTEN, which needs a session: a direct URL when `url` goes through a transaction pooler. */
  readonly directUrl?: string
  readonly poolSize: number
  readonly log?: WarnLog
  /**
   * The server cancels a statement running longer (SQLSTATE 57014, answered 503): a request
   * stuck behind a lock then ends instead of holding its connection forever. Undefined: no limit.
   */
  readonly statementTimeoutMs?: number
}

/**
 * False when the server at `url` refuses startup parameters, as PgBouncer 1.18 and Neon's pooled
 * endpoint do ("unsupported startup parameter: statement_timeout"). Unknown (unreachable): true.
 */
async function acceptsStartupParameters (url: string): Promise<boolean> {
  const probe = new pg.Client({ connectionString: url, statement_timeout: 60_000, connectionTimeoutMillis: 5_000 })
  try {
    await probe.connect()
    return true
  } catch (error) {
    return !/unsupported startup parameter/i.test((error as Error).message)
  } finally {
    await probe.end().catch(() => {})
  }
}

export async function openPostgres ({ url, directUrl, poolSize, log, statementTimeoutMs }: PostgresOptions): Promise<Database> {
  // The switch for transaction poolers: they take no startup parameters, so behind one the
  // statement timeout is the pooler's own (PgBouncer's query_timeout). Queries use no named
  // prepared statements (drizzle sends unnamed ones), which such a pooler could not keep either.
  const pooled = statementTimeoutMs !== undefined && !await acceptsStartupParameters(url)
  if (pooled) log?.warn({}, 'DATABASE_URL refuses startup parameters (a transaction pooler?): no statement timeout is set; set the pooler\'s query_timeout')
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    // A request waiting this long for a connection gets a 503 rather than hanging.
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    ...(statementTimeoutMs !== undefined && !pooled && { statement_timeout: statementTimeoutMs }),
  })
  // Without this listener an idle connection dropped by the server (restart, failover,
  // pg_terminate_backend) crashes the process. The pool replaces the connection by itself.
  pool.on('error', (error) => {
    log?.warn({ code: (error as { code?: string }).code, message: error.message }, 'idle database connection lost')
  })
  const db = drizzlePg({ client: pool, schema }) as unknown as Db
  return {
    kind: 'postgres',
    db,
    async ping () { await pool.query('select 1') },
    async migrate () {
      // Several processes may start at once on one database: the advisory lock lets one migrate
      // while the others wait, then find nothing left to do. A plain connection, not the pool, and
      // one transaction holding a transaction-scoped lock: a session lock taken through a
      // transaction pooler stays on the pooler's server connection after we leave, and the next
      // process to start waits on it forever. drizzle's own BEGIN inside is then a no-op (a
      // warning) and its COMMIT ends ours, releasing the lock once the migrations are in.
      const client = new pg.Client({ connectionString: directUrl ?? url })
      await client.connect()
      try {
        await client.query('begin')
        await client.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY])
        await migratePg(drizzlePg({ client }), { migrationsFolder })
        await client.query('commit')
      } finally {
        await client.end()
      }
    },
    listen (channel, onMessage, onReconnect) {
      return listenPostgres({ url: directUrl ?? url, channel, onMessage, onReconnect, log })
    },
    async close () { if (!pool.ended) await pool.end() },
    poolStats: () => ({
      max: poolSize,
      open: pool.totalCount,
      inUse: pool.totalCount - pool.idleCount,
      waiting: pool.waitingCount,
    }),
  }
}

/** The application_name of LISTEN connections, so operators (and tests) can find them. */
export const LISTEN_APPLICATION_NAME = 'taskbase-listen'

interface ListenOptions {
  url: string
  channel: string
  onMessage: (payload: string) => void
  onReconnect: () => void
  log?: WarnLog
}

/**
 * One dedicated connection that LISTENs, replaced whenever it is lost (server restart,
 * pg_terminate_backend, network), retrying with a backoff of up to 2 s.
 */
async function listenPostgres ({ url, channel, onMessage, onReconnect, log }: ListenOptions): Promise<() => Promise<void>> {
  let client: pg.Client | undefined
  let stopped = false
  let retryDelay = 100
  let timer: NodeJS.Timeout | undefined

  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString: url, application_name: LISTEN_APPLICATION_NAME })
    next.on('notification', (message) => { if (message.channel === channel) onMessage(message.payload ?? '') })
    const lost = (error?: Error) => {
      if (client !== next || stopped) return
      client = undefined
      log?.warn({ message: error?.message }, 'LISTEN connection lost; reconnecting')
      next.end().catch(() => {})
      schedule()
    }
    next.on('error', lost)
    next.on('end', () => lost())
    await next.connect()
    await next.query(`LISTEN ${pg.escapeIdentifier(channel)}`)
    client = next
    retryDelay = 100
  }

  const schedule = () => {
    timer = setTimeout(() => {
      connect().then(onReconnect, () => {
        retryDelay = Math.min(retryDelay * 2, 2_000)
        if (!stopped) schedule()
      })
    }, retryDelay)
    timer.unref()
  }

  await connect()
  return async () => {
    stopped = true
    clearTimeout(timer)
    await client?.end().catch(() => {})
  }
}
