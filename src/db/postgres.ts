import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres'
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator'
import pg from 'pg'
import type { Database, ListenHandlers, WarnLog } from './database.js'
import type { Statement } from './sql.js'
import { migrationsFolder, NOTIFY_EACH, typeParsers } from './shared.js'

/** Any constant will do, as long as nothing else on the database uses it. */
const MIGRATION_LOCK_KEY = 0x7a5b_da5e

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
  /**
   * Named prepared statements: parsed and planned once per connection, then only bound. `auto`
   * (the default) uses them unless `url` looks like a transaction pooler, which cannot keep a
   * statement prepared on one server connection for the next transaction.
   */
  readonly preparedStatements?: boolean | 'auto'
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

/** node-postgres's type hook, per pool: a global `pg.types.setTypeParser` would change every client in the process. */
const pgTypes = {
  getTypeParser: (oid: number, format?: string) =>
    (format === undefined || format === 'text') && typeParsers[oid] ? typeParsers[oid] : pg.types.getTypeParser(oid, format as 'text'),
} as unknown as pg.CustomTypesConfig

const DEADLOCK_DETECTED = '40P01'
/** Attempts of a statement or transaction that PostgreSQL chose to end in a deadlock. */
const DEADLOCK_ATTEMPTS = 3

/**
 * Runs `attempt` again when PostgreSQL ended it to break a deadlock: it was rolled back whole, and
 * the other side has since gone on, so the retry normally succeeds. Deadlocks come from a user's
 * writes that lock several rows (a move and its subtree, a completion and its subtasks, a cascade)
 * racing one that locks a row of theirs, each also taking the user's row (its change counter).
 */
async function afterDeadlocks<T> (attempt: () => Promise<T>): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await attempt()
    } catch (error) {
      if (tries >= DEADLOCK_ATTEMPTS || (error as { code?: unknown }).code !== DEADLOCK_DETECTED) throw error
    }
  }
}

type RowBuilder = { names: string[], build: (values: unknown[]) => unknown }

/** Bounds the builders below, as statement() bounds its cache: one per statement text. */
const MAX_ROW_BUILDERS = 5_000

/**
 * Rows as objects, made by one function per statement: `(v) => ({ id: v[0], title: v[1], ... })`.
 * node-postgres makes a row by copying a template object and then setting each column by its name.
 * With the app's hundred-odd statements, each with its own columns, those two sites see objects of
 * every shape and V8 falls back to its slowest path: 18 us per list page of 20 rows, against 3.8 us
 * for the limit's few statements (--cpu-prof of pg's parseRow under load, issue 21). Rows come as
 * arrays instead, and each statement's own function gives its rows one shape. The column names are
 * the statement's (our SQL's aliases), compared on every result, so a statement whose columns
 * changed gets a new function.
 */
function rowBuilders () {
  const builders = new Map<string, RowBuilder>()
  const matches = (builder: RowBuilder, fields: readonly pg.FieldDef[]) =>
    builder.names.length === fields.length && builder.names.every((name, i) => name === fields[i]!.name)
  return (s: Statement, fields: readonly pg.FieldDef[], values: unknown[][]): unknown[] => {
    if (values.length === 0) return values
    let builder = builders.get(s.name)
    if (builder === undefined || !matches(builder, fields)) {
      const names = fields.map((field) => field.name)
      // The names are our SQL's columns, quoted as JSON. A duplicated one keeps its last column, as
      // in an object literal and as node-postgres did.
      const build = new Function('v', `return { ${names.map((name, i) => `${JSON.stringify(name)}: v[${i}]`).join(', ')} }`) as RowBuilder['build']
      builder = { names, build }
      if (builders.size < MAX_ROW_BUILDERS) builders.set(s.name, builder)
    }
    const { build } = builder
    const out = new Array<unknown>(values.length)
    for (let i = 0; i < values.length; i++) out[i] = build(values[i]!)
    return out
  }
}

export async function openPostgres (options: PostgresOptions): Promise<Database> {
  const { url, directUrl, poolSize, log, statementTimeoutMs, preparedStatements = 'auto' } = options
  // Transaction poolers take no startup parameters: behind one, the statement timeout is the
  // pooler's own (PgBouncer's query_timeout), and statements go unnamed.
  const pooled = (statementTimeoutMs !== undefined || preparedStatements === 'auto') && !await acceptsStartupParameters(url)
  if (pooled) log?.warn({}, 'DATABASE_URL refuses startup parameters (a transaction pooler?): no statement timeout is set and statements are not prepared; set the pooler\'s query_timeout')
  const prepared = preparedStatements === 'auto' ? !pooled : preparedStatements
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    types: pgTypes,
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
  const listeners = new Set<Listener>()
  // One object shape per mode, built without a spread: this runs for every statement.
  const config = prepared
    ? (s: Statement, values?: readonly unknown[]) => ({ name: s.name, text: s.text, values: values as unknown[], rowMode: 'array' as const })
    : (s: Statement, values?: readonly unknown[]) => ({ text: s.text, values: values as unknown[], rowMode: 'array' as const })
  const rows = rowBuilders()
  const run = async <R>(client: pg.Pool | pg.PoolClient, s: Statement, values?: readonly unknown[]): Promise<R[]> => {
    const result = await client.query<unknown[]>(config(s, values))
    return rows(s, result.fields, result.rows) as R[]
  }
  return {
    kind: 'postgres',
    query: (s, values) => afterDeadlocks(() => run(pool, s, values)),
    transaction: (work) => afterDeadlocks(async () => {
      const client = await pool.connect()
      let broken: Error | undefined
      try {
        await client.query('begin')
        const result = await work({ query: (s, values) => run(client, s, values) })
        await client.query('commit')
        return result
      } catch (error) {
        // A connection that cannot even roll back is broken: release it to be destroyed.
        broken = await client.query('rollback').then(() => undefined, (e: Error) => e)
        throw error
      } finally {
        client.release(broken)
      }
    }),
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
    async listen (channel, handlers) {
      const listener = await listenPostgres({ url: directUrl ?? url, channel, handlers, log })
      listeners.add(listener)
      return async () => {
        listeners.delete(listener)
        await listener.stop()
      }
    },
    async notify (channel, payloads) {
      // On a LISTEN connection when there is one: it is idle, so a request never waits behind this.
      const client = [...listeners].map((l) => l.client()).find((c) => c !== undefined)
      await (client ?? pool).query(NOTIFY_EACH, [channel, payloads])
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
  handlers: ListenHandlers
  log?: WarnLog
}

/**
 * One dedicated connection that LISTENs, replaced whenever it is lost (server restart,
 * pg_terminate_backend, network), retrying with a backoff of up to 2 s.
 */
interface Listener {
  /** The connection, while it is up. */
  client (): pg.Client | undefined
  stop (): Promise<void>
}

async function listenPostgres ({ url, channel, handlers, log }: ListenOptions): Promise<Listener> {
  let client: pg.Client | undefined
  let stopped = false
  let retryDelay = 100
  let timer: NodeJS.Timeout | undefined

  const connect = async (): Promise<void> => {
    // TCP keep-alive: a peer that vanishes without a reset (a partition) is noticed, not waited on for ever.
    const next = new pg.Client({ connectionString: url, application_name: LISTEN_APPLICATION_NAME, keepAlive: true })
    next.on('notification', (message) => { if (message.channel === channel) handlers.message(message.payload ?? '') })
    const lost = (error?: Error) => {
      if (client !== next || stopped) return
      client = undefined
      log?.warn({ message: error?.message }, 'LISTEN connection lost; reconnecting')
      handlers.lost()
      next.end().catch(() => {})
      schedule()
    }
    next.on('error', lost)
    next.on('end', () => lost())
    try {
      await next.connect()
      await next.query(`LISTEN ${pg.escapeIdentifier(channel)}`)
    } catch (error) {
      await next.end().catch(() => {})
      throw error
    }
    client = next
    retryDelay = 100
  }

  const schedule = () => {
    timer = setTimeout(() => {
      connect().then(() => handlers.restored(), () => {
        retryDelay = Math.min(retryDelay * 2, 2_000)
        if (!stopped) schedule()
      })
    }, retryDelay)
    timer.unref()
  }

  await connect()
  return {
    client: () => client,
    async stop () {
      stopped = true
      clearTimeout(timer)
      await client?.end().catch(() => {})
    },
  }
}
