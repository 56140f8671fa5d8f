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
  /**
   * Connections that carry single reads in pipeline mode (see `readConnections`), besides the
   * pool; 0: reads take the pool as writes do. Never behind a transaction pooler. Default 4.
   */
  readonly readConnections?: number
  /** A read connection unused this long closes, as the pool's idle ones do. Default 30 s. */
  readonly readIdleMs?: number
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

/** What a statement's rows are made of: their columns, and the function that makes one row. */
interface Shape {
  readonly names: readonly string[]
  readonly types: readonly number[]
  /** One row from its columns' text (null for SQL NULL), each parsed as its type says. */
  readonly build: (text: ReadonlyArray<string | null>) => unknown
}

type Field = { name: string, dataTypeID: number }

/** Bounds the shapes below, as statement() bounds its cache: one per statement text. */
const MAX_SHAPES = 5_000

/** Text, varchar, uuid, enums: the types whose parser gives back the text it is given. */
const asText = pg.types.getTypeParser(25, 'text')

const parserOf = (oid: number) => typeParsers[oid] ?? pg.types.getTypeParser(oid, 'text')

/**
 * The shape of rows with these columns: one function per statement,
 * `(f) => ({ id: f[0], dueAt: f[5] === null ? null : p[5](f[5]), ... })`, which parses and names
 * each column. node-postgres made each row by copying a template object and setting each column
 * by name; with the app's hundred-odd statements those sites saw objects of every shape, and V8
 * fell back to its slowest path (18 us per list page of 20 rows against 3.8 us for the limit's
 * few statements, issue 21). A statement's own function gives its rows one shape. The names are
 * our SQL's aliases, quoted as JSON; a duplicated one keeps its last column, as in an object literal.
 */
function shapeOf (fields: readonly Field[]): Shape {
  const parsers = fields.map((field) => parserOf(field.dataTypeID))
  const properties = fields.map((field, i) => `${JSON.stringify(field.name)}: ` +
    (parsers[i] === asText ? `f[${i}]` : `f[${i}] === null ? null : p[${i}](f[${i}])`))
  const build = new Function('p', `return function (f) { return { ${properties.join(', ')} } }`)(parsers) as Shape['build']
  return { names: fields.map((field) => field.name), types: fields.map((field) => field.dataTypeID), build }
}

const NO_COLUMNS = shapeOf([])

/** The shapes met so far, by statement name: a statement described again reuses its function. */
function shapes () {
  const known = new Map<string, Shape>()
  const fits = (shape: Shape, fields: readonly Field[]) => shape.names.length === fields.length &&
    fields.every((field, i) => field.name === shape.names[i] && field.dataTypeID === shape.types[i])
  return (statement: Statement, fields: readonly Field[]): Shape => {
    let shape = known.get(statement.name)
    if (shape === undefined || !fits(shape, fields)) {
      shape = shapeOf(fields)
      if (known.size < MAX_SHAPES) known.set(statement.name, shape)
    }
    return shape
  }
}

/** pg's connection, as far as a query writes to it (the calls pg's own Query and pg-cursor make). */
interface Connection {
  stream: { cork?: () => void, uncork?: () => void }
  parsedStatements: Record<string, string>
  submittedNamedStatements: Record<string, string>
  parse (message: { text: string, name?: string }): void
  bind (message: { statement?: string, values?: readonly unknown[], valueMapper: (value: unknown) => unknown }): void
  describe (message: { type: 'P', name: string }): void
  execute (message: { portal: string }): void
  sync (): void
  sendCopyFail (message: string): void
}

const prepareValue = (pg as unknown as { utils: { prepareValue: (value: unknown) => unknown } }).utils.prepareValue

interface ExecutionContext {
  /** Statements are named, and prepared on each connection. */
  readonly prepared: boolean
  readonly shapeFor: ReturnType<typeof shapes>
  /** By connection: the shapes of the statements it has prepared and described. */
  readonly described: WeakMap<Connection, Map<string, Shape>>
}

type Done = (error: Error | null, rows?: unknown[]) => void

// pg's client takes only its own Query in pipeline mode (pg-cursor's kind keeps a portal open).
// Given the text alone: given an object, its constructor copies it by property descriptors (1.5 us).
const QueryBase = pg.Query as unknown as new (text: string) => object

/**
 * One execution of a statement, as node-postgres's client runs a query object of its own (a
 * "submittable", as pg-cursor is). pg's Query asks the server to describe the result on every
 * execution and builds its row parsers from that description each time (`addFields`: 15-19 us of
 * a task read, issue 21). Here a connection describes a statement once, when it prepares it, and
 * keeps its shape (`described`); later executions there are only bound and executed. PostgreSQL
 * holds a prepared statement's result to the columns it was described with: a table changed
 * since fails the execution ("cached plan must not change result type") rather than answer other
 * columns. An unnamed statement (behind a transaction pooler) is described every time.
 */
class Execution extends QueryBase {
  /** Set by pg's client or pool, which call it once, with the error or the rows. */
  callback: Done | undefined
  readonly name: string | undefined
  readonly text: string
  private readonly collected: unknown[] = []
  private shape: Shape | undefined
  private described: Map<string, Shape> | undefined
  private failure: Error | undefined
  private answered = false

  constructor (private readonly context: ExecutionContext, private readonly statement: Statement,
    private readonly values: readonly unknown[] | undefined) {
    super(statement.text)
    this.name = context.prepared ? statement.name : undefined
    this.text = statement.text
  }

  submit (connection: Connection): null {
    const { name } = this
    if (name !== undefined) {
      this.described = this.context.described.get(connection)
      if (this.described === undefined) this.context.described.set(connection, this.described = new Map())
      if (connection.parsedStatements[name] !== undefined) this.shape = this.described.get(name)
    }
    connection.stream.cork?.()
    try {
      if (name === undefined || (connection.parsedStatements[name] === undefined && connection.submittedNamedStatements[name] === undefined)) {
        connection.parse({ text: this.text, name })
        if (name !== undefined) connection.submittedNamedStatements[name] = this.text
      }
      try {
        connection.bind({ statement: name, values: this.values ?? [], valueMapper: prepareValue })
      } catch (error) {
        // A value that cannot be sent (a cyclic object): nothing runs. A statement parsed just now
        // stays prepared, as the client will note when the server says so.
        connection.sync()
        this.handleError(error as Error)
        return null
      }
      if (this.shape === undefined) connection.describe({ type: 'P', name: '' })
      connection.execute({ portal: '' })
      connection.sync()
    } finally {
      connection.stream.uncork?.()
    }
    return null
  }

  handleRowDescription (message: { fields: Field[] }): void {
    this.keep(this.context.shapeFor(this.statement, message.fields))
  }

  handleDataRow (message: { fields: Array<string | null> }): void {
    if (this.failure !== undefined) return
    try {
      this.collected.push(this.shape!.build(message.fields))
    } catch (error) {
      this.failure = error as Error
    }
  }

  handleCommandComplete (): void {
    // Described, and no RowDescription came (NoData): a statement without columns.
    if (this.shape === undefined) this.keep(NO_COLUMNS)
  }

  private keep (shape: Shape): void {
    this.shape = shape
    if (this.name !== undefined) this.described?.set(this.name, shape)
  }

  handleEmptyQuery (): void {}

  handlePortalSuspended (): void {}

  handleError (error: Error): void {
    this.answer(this.failure ?? error)
  }

  handleReadyForQuery (): void {
    this.answer(this.failure ?? null)
  }

  /** Once: a value that could not be bound is answered at once, and its sync still ends in ReadyForQuery. */
  private answer (error: Error | null): void {
    if (this.answered) return
    this.answered = true
    if (error === null) this.callback?.(null, this.collected)
    else this.callback?.(error)
  }

  handleCopyInResponse (connection: Connection): void {
    connection.sendCopyFail('No source stream defined')
  }

  handleCopyData (): void {}
}

/** A read connection: a pg client in pipeline mode, and what it has on the wire. */
interface Lane {
  readonly client: pg.Client
  /** Statements sent and not yet answered. */
  pending: number
  /** Held corked until the event loop's turn ends, so the turn's reads leave in one write. */
  corked: boolean
  lastUsed: number
}

/** feature_not_supported (a cached plan whose result changed), invalid_sql_statement_name. */
const STALE_STATEMENT = new Set(['0A000', '26000'])

/** The application_name of read connections, so operators (and tests) can find them. */
export const READ_APPLICATION_NAME = 'taskbase-read'

const SELECT = /^\s*select\b/i
const WRITES = /\bfor\s+(no\s+key\s+)?update\b|\bfor\s+(key\s+)?share\b|\b(insert|update|delete)\b|\b(nextval|setval|set_config|pg_advisory\w*|pg_notify)\s*\(/i
const readOnly = new WeakMap<Statement, boolean>()

/**
 * A SELECT that, by its text, writes, locks and sets nothing. Only a matter of speed: a statement
 * sent down a read connection is still its own transaction, committed alone, as on the pool.
 */
export function isReadOnly (s: Statement): boolean {
  let found = readOnly.get(s)
  if (found === undefined) readOnly.set(s, found = SELECT.test(s.text) && !WRITES.test(s.text))
  return found
}

/**
 * Single reads (not in a transaction) go down a few connections in pipeline mode. Each statement
 * is sent with its own Sync, so it is its own implicit transaction and a failed one fails alone;
 * the next are sent without waiting for its answer. The reads of every request handled in one
 * turn of the event loop leave in one write per connection, corked until setImmediate, where the
 * pool sent each in a write of its own and woke a server process for each. Writes stay on the
 * pool: a commit waits for its WAL flush, and on a pipelined connection everything behind it
 * would wait too. Connections open on first use, are replaced when lost, and close after
 * `idleMs` without a read.
 */
function readConnections (count: number, idleMs: number, connect: () => pg.Client, log?: WarnLog) {
  const lanes: Lane[] = []
  let sweeper: NodeJS.Timeout | undefined
  let closed = false
  const retire = (lane: Lane) => {
    const at = lanes.indexOf(lane)
    if (at >= 0) lanes.splice(at, 1)
    if (lanes.length === 0) {
      clearInterval(sweeper)
      sweeper = undefined
    }
    lane.client.end().catch(() => {})
  }
  const open = (): Lane => {
    const client = connect()
    const lane: Lane = { client, pending: 0, corked: false, lastUsed: Date.now() }
    // pg fails every statement on the wire when the connection is lost; the next read opens another.
    client.on('error', (error) => {
      log?.warn({ code: (error as { code?: string }).code, message: error.message }, 'read connection to the database lost')
      retire(lane)
    })
    client.on('end', () => retire(lane))
    client.connect().catch(() => retire(lane))
    lanes.push(lane)
    sweeper ??= setInterval(() => {
      const now = Date.now()
      for (const idle of lanes.filter((l) => l.pending === 0 && now - l.lastUsed > idleMs)) retire(idle)
    }, Math.max(idleMs / 3, 10)).unref()
    return lane
  }
  const pick = (): Lane => {
    if (lanes.length < count) {
      // Open another only when every open one is busy.
      const free = lanes.find((lane) => lane.pending === 0)
      return free ?? open()
    }
    let best = lanes[0]!
    for (let i = 1; i < lanes.length; i++) if (lanes[i]!.pending < best.pending) best = lanes[i]!
    return best
  }
  return {
    run <R>(execution: Execution): Promise<R[]> {
      // As the pool refuses queries once ended (errors.ts answers both 503).
      if (closed) return Promise.reject(new Error('The read connections are closed'))
      const lane = pick()
      lane.pending++
      lane.lastUsed = Date.now()
      const { stream } = (lane.client as unknown as { connection: Connection }).connection
      if (!lane.corked && stream.cork !== undefined) {
        lane.corked = true
        stream.cork()
        setImmediate(() => { lane.corked = false; stream.uncork?.() })
      }
      return new Promise<R[]>((resolve, reject) => {
        execution.callback = (error, rows) => {
          lane.pending--
          if (error === null) return resolve(rows as R[])
          // A statement prepared here that can no longer run as prepared (a table changed under
          // it: "cached plan must not change result type"): the connection goes, as the pool's
          // do after any error, and the next one prepares it afresh.
          if (STALE_STATEMENT.has((error as { code?: string }).code!)) retire(lane)
          reject(error)
        }
        lane.client.query(execution as never)
      })
    },
    async close () {
      closed = true
      clearInterval(sweeper)
      // In pipeline mode pg's end waits for the statements on the wire, then says goodbye.
      await Promise.all(lanes.splice(0).map((lane) => lane.client.end().catch(() => {})))
    },
    stats: () => ({ open: lanes.length, pending: lanes.reduce((sum, lane) => sum + lane.pending, 0) }),
  }
}

export async function openPostgres (options: PostgresOptions): Promise<Database> {
  const { url, directUrl, poolSize, log, statementTimeoutMs, preparedStatements = 'auto', readIdleMs = 30_000 } = options
  // Transaction poolers take no startup parameters: behind one, the statement timeout is the
  // pooler's own (PgBouncer's query_timeout), and statements go unnamed.
  const pooled = (statementTimeoutMs !== undefined || preparedStatements === 'auto') && !await acceptsStartupParameters(url)
  if (pooled) log?.warn({}, 'DATABASE_URL refuses startup parameters (a transaction pooler?): no statement timeout is set and statements are not prepared; set the pooler\'s query_timeout')
  const prepared = preparedStatements === 'auto' ? !pooled : preparedStatements
  // What the pool's connections and the read connections share.
  const connection = {
    connectionString: url,
    types: pgTypes,
    // A request waiting this long for a connection gets a 503 rather than hanging.
    connectionTimeoutMillis: 5_000,
    ...(statementTimeoutMs !== undefined && !pooled && { statement_timeout: statementTimeoutMs }),
  }
  const pool = new pg.Pool({ ...connection, max: poolSize, idleTimeoutMillis: 30_000 })
  // Without this listener an idle connection dropped by the server (restart, failover,
  // pg_terminate_backend) crashes the process. The pool replaces the connection by itself.
  pool.on('error', (error) => {
    log?.warn({ code: (error as { code?: string }).code, message: error.message }, 'idle database connection lost')
  })
  const listeners = new Set<Listener>()
  // A transaction pooler may give each Sync's transaction another server: no pipelines through it.
  const readCount = pooled ? 0 : options.readConnections ?? 4
  const reads = readCount > 0
    ? readConnections(readCount, readIdleMs,
      () => new pg.Client({ ...connection, application_name: READ_APPLICATION_NAME, pipeline: true } as pg.ClientConfig), log)
    : undefined
  const context: ExecutionContext = { prepared, shapeFor: shapes(), described: new WeakMap() }
  const execution = (s: Statement, values?: readonly unknown[]) => new Execution(context, s, values)
  /** On the transaction's connection. */
  const runOn = <R>(client: pg.PoolClient, s: Statement, values?: readonly unknown[]) => new Promise<R[]>((resolve, reject) => {
    const run = execution(s, values)
    run.callback = (error, rows) => error ? reject(error) : resolve(rows as R[])
    client.query(run as never)
  })
  return {
    kind: 'postgres',
    // The pool sets the callback (it releases the connection there) and answers with a promise.
    query: (s, values) => afterDeadlocks(() => reads !== undefined && isReadOnly(s)
      ? reads.run(execution(s, values))
      : pool.query(execution(s, values) as never) as unknown as Promise<never[]>),
    transaction: (work) => afterDeadlocks(async () => {
      const client = await pool.connect()
      let broken: Error | undefined
      try {
        await client.query('begin')
        const result = await work({ query: (s, values) => runOn(client, s, values) })
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
    async close () {
      await reads?.close()
      if (!pool.ended) await pool.end()
    },
    poolStats: () => {
      const { open = 0, pending = 0 } = reads?.stats() ?? {}
      return {
        max: poolSize,
        open: pool.totalCount,
        inUse: pool.totalCount - pool.idleCount,
        waiting: pool.waitingCount,
        readConnections: open,
        readsPending: pending,
      }
    },
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
