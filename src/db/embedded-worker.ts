/**
 * The embedded database's thread. PGlite runs PostgreSQL in WASM, and every query blocks the thread
 * it runs on: on the HTTP thread it took 58% of the server's CPU (issue 10), so requests waited on it
 * and on each other. Here it has a thread of its own; the HTTP thread posts statements and awaits
 * answers (embedded.ts). Messages are handled in arrival order and PGlite runs one query at a time,
 * first come first served, so no request can be passed over for ever.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { parse, PGlite, protocol, types } from '@electric-sql/pglite'
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm'
import { drizzle } from 'drizzle-orm/pglite'
import { migrate } from 'drizzle-orm/pglite/migrator'
import type { Request, Response, WorkerOptions } from './embedded.js'
import { readAnswer, type Answer } from './embedded-protocol.js'
import { copySeed, type Created } from './embedded-seed.js'
import { migrationsFolder, typeParsers } from './shared.js'
import { COUNTED_ROWS, passSteps, VACUUM_SETTLE_MS, vacuumDue } from './vacuum.js'

/**
 * At most this many statements stay prepared: each holds its plans in the database's memory, which
 * WASM never gives back. Measured on PGlite alone with list statements of one shape each, run 7 times
 * (a generic plan made): 250 more of them held ~9 MB more, and 250 more again ~12 MB. The server's
 * fixed statements are about 110, and a task list's filters and sorts make the rest.
 */
const MAX_PREPARED = 200

const port = parentPort!
const { dataDir, template, seed, vacuum, maxPrepared = MAX_PREPARED } = workerData as WorkerOptions

let created: Created | undefined
if (dataDir !== undefined) {
  await mkdir(dataDir, { recursive: true })
  // A first start: a copy of the migrated seed, or (without one) PGlite's initdb when it opens.
  if (!existsSync(join(dataDir, 'PG_VERSION'))) created = seed !== undefined && copySeed(seed, dataDir) ? 'seed' : 'initdb'
}
/**
 * PostgreSQL's memory settings, for one process serving one app (issue 21). initdb sizes a server
 * for 100 connections with 128 MB of shared buffers; inside PGlite every page of those is WASM
 * memory this process holds for good. Measured on a kept data directory, the idle server held
 * 388 MB with initdb's settings and 281 MB with these. A page not in the buffers is a read of the
 * data file, which the operating system caches.
 */
const SETTINGS = ['shared_buffers=16MB', 'max_connections=8', 'maintenance_work_mem=16MB', 'temp_buffers=2MB',
  // An ANALYZE samples 300 rows per unit of this: at 30, `ANALYZE tasks` of ~110,000 tasks took 94 ms,
  // and 371 ms at PostgreSQL's 100, which every request would wait (vacuum.ts). The plans of seven
  // list shapes (the default order, open tasks, by due date, search, priority, tag, the count) were
  // the same at 10, 30 and 100 on 100 users' tasks, but for one more trigram index in the search's.
  'default_statistics_target=30']

// Extensions must be given on every open, not only the first: without pg_trgm loaded, writes to the
// indexed tasks table fail.
const db = await PGlite.create(dataDir, {
  extensions: { pg_trgm },
  parsers: typeParsers,
  startParams: [...PGlite.defaultStartParams, ...SETTINGS.flatMap((setting) => ['-c', setting])],
  ...(template && { loadDataDir: new Blob([template as Uint8Array<ArrayBuffer>]) }),
})

/**
 * Statements by text, prepared under a name on PGlite's one session, least recently used first, and
 * the types PostgreSQL gave their parameters. PGlite's own `query` sends every statement unnamed, so
 * PostgreSQL parsed and planned it at every run: a task read took 465 us of the database thread, and
 * 130 prepared (a list page of 20, 870 and 530 us; 3,000 runs each on one thread, issue 21), as
 * node-postgres's named statements already spare a PostgreSQL server.
 */
const prepared = new Map<string, { name: string, types: number[] }>()
let lastPrepared = 0
const { serialize } = protocol

/** The messages, one buffer: PGlite runs each message of a buffer in turn, then answers all. */
function joined (...messages: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(messages.reduce((length, m) => length + m.length, 0))
  let at = 0
  for (const m of messages) {
    out.set(m, at)
    at += m.length
  }
  return out
}

/**
 * Runs `text` as a named statement (prepared at its first run), as PGlite's `query` runs it unnamed:
 * under the query lock, and, outside a transaction, under the transaction lock too, so that it never
 * runs inside another request's transaction; an error skips to the Sync, which always ends it.
 */
function runPrepared (inTransaction: boolean, text: string, values: readonly unknown[]): Promise<Answer> {
  const run = async (): Promise<Answer> => {
    // As PGlite's own check words it, which the HTTP side answers 503 (http/errors.ts).
    if (db.closed) throw new Error('PGlite is closed')
    const chunks: Uint8Array[] = []
    // PGlite hands over a view of its memory, which the next statement overwrites.
    const options = { syncToFs: false, onRawData: (bytes: Uint8Array) => { chunks.push(bytes.slice()) } }
    try {
      let statement = prepared.get(text)
      if (statement === undefined) {
        const name = `tb${++lastPrepared}`
        const evicted = prepared.size >= maxPrepared ? prepared.keys().next().value : undefined
        const close = evicted === undefined ? [] : [serialize.close({ type: 'S', name: prepared.get(evicted)!.name })]
        if (evicted !== undefined) prepared.delete(evicted)
        const described = await db.execProtocolStream(joined(...close, serialize.parse({ name, text }), serialize.describe({ type: 'S', name })), { syncToFs: false })
        statement = { name, types: parse.parseDescribeStatementResults(described) }
      } else {
        prepared.delete(text) // and set again below: the most recently used
      }
      prepared.set(text, statement)
      const { name, types } = statement
      const params = values.map((value, i) => {
        if (value === null || value === undefined) return null
        const serializer = db.serializers[types[i]!]
        return serializer ? serializer(value) : String(value)
      })
      await db.execProtocolRawStream(
        joined(serialize.bind({ statement: name, values: params }), serialize.describe({ type: 'P' }), serialize.execute({})), options)
    } finally {
      await db.execProtocolRawStream(serialize.sync(), options)
    }
    if (!inTransaction) await db.syncToFs()
    const answer = readAnswer(chunks, parseValue)
    // What a statement notified reaches the listeners here: PGlite's own parser, which called them, was bypassed.
    for (const { channel, payload } of answer.notifications) if (listening.has(channel)) notify(channel, payload)
    if (answer.error !== undefined) throw answer.error
    return answer
  }
  return inTransaction ? db._runExclusiveQuery(run) : db._runExclusiveTransaction(() => db._runExclusiveQuery(run))
}

const parseValue = (text: string, typeId: number) => types.parseType(text, typeId, db.parsers)

/** The channels LISTENed to. */
const listening = new Set<string>()
const notify = (channel: string, payload: string) => port.postMessage({ notify: channel, payload })

/** Open transactions by id. PGlite holds its lock while one is open: other statements wait. */
const transactions = new Map<number, { finish: (commit: boolean) => void, done: Promise<void> }>()
let nextTransaction = 1
const ROLLBACK = Symbol('rollback')

const reply = (message: Response) => port.postMessage(message)

/** What crosses the thread boundary of a database error: enough for the HTTP side to classify it. */
function errorFields (error: unknown) {
  const e = error as Record<string, unknown>
  return {
    message: String(e?.message ?? error),
    ...Object.fromEntries(['code', 'severity', 'detail', 'constraint', 'table', 'column'].flatMap((k) =>
      typeof e?.[k] === 'string' ? [[k, e[k]]] : [])),
  }
}

function begin (): Promise<number> {
  return new Promise((resolve, reject) => {
    const id = nextTransaction++
    let finish!: (commit: boolean) => void
    const decided = new Promise<boolean>((resolve) => { finish = resolve })
    // Its statements run through runPrepared, which holds the query lock only: PGlite's transaction
    // holds the other until it ends.
    const done = db.transaction(async () => {
      transactions.set(id, { finish, done })
      resolve(id)
      if (!await decided) throw ROLLBACK
    }).then(() => {}, (error: unknown) => { if (error !== ROLLBACK) throw error })
      .finally(() => transactions.delete(id))
    // A BEGIN that fails never reaches the callback.
    done.catch(reject)
  })
}

/**
 * Autovacuum's job, which single-user PostgreSQL does not do (vacuum.ts): rows changed are counted
 * here; once a pass is due it runs in short steps, requests answered between them, and tells the HTTP
 * thread what it took. The indexes are cleaned in a quiet moment, or after `indexWaitMs` at most.
 */
let changedRows = 0
let countedRows = 0
let lastVacuum = 0
let vacuumTimer: NodeJS.Timeout | undefined
/** Whether vacuumTimer starts a due pass (else it looks for a quiet moment). */
let passTimer = false
let vacuuming = false
/** Since when a pass has left the indexes to clean; undefined: none has. */
let indexesOwedSince: number | undefined
let handling = 0
/** When the last request arrived or was answered (performance.now()). */
let lastRequest = 0

/** Between two steps of a pass: long enough for the requests that arrived meanwhile to be taken first. */
const STEP_GAP_MS = 10
/** How often a server that owes its indexes a cleaning looks for a quiet moment. */
const QUIET_CHECK_MS = 1_000

const quiet = () => handling === 0 && transactions.size === 0 && performance.now() - lastRequest >= vacuum!.quietMs
const indexesDue = () => quiet() || (indexesOwedSince !== undefined && Date.now() - indexesOwedSince >= vacuum!.indexWaitMs)

function countChanges (rows: number | undefined) {
  if (!vacuum || !rows) return
  changedRows += rows
  if (vacuumDue(vacuum, changedRows, countedRows)) scheduleVacuum()
}

function scheduleVacuum () {
  if (!vacuum || vacuuming || db.closed) return
  if (vacuumDue(vacuum, changedRows, countedRows)) {
    if (passTimer) return
    // A due pass comes before the look for a quiet moment, which it may make needless.
    clearTimeout(vacuumTimer)
    passTimer = true
    const wait = Math.max(VACUUM_SETTLE_MS, lastVacuum + vacuum.intervalMs - Date.now())
    vacuumTimer = setTimeout(() => { vacuumTimer = undefined; void vacuumPass(indexesDue()) }, wait)
  } else if (indexesOwedSince !== undefined && vacuumTimer === undefined) {
    vacuumTimer = setTimeout(() => {
      vacuumTimer = undefined
      if (indexesDue()) void vacuumPass(true)
      else scheduleVacuum()
    }, Math.min(QUIET_CHECK_MS, vacuum.quietMs))
  }
}

async function vacuumPass (cleanIndexes: boolean) {
  vacuuming = true
  passTimer = false
  const started = performance.now()
  const changed = changedRows
  changedRows = 0
  let steps = 0
  let longestMs = 0
  try {
    const names = async (sql: string) => (await db.query<{ name: string }>(sql)).rows.map((row) => row.name)
    for (const step of await passSteps(names, cleanIndexes)) {
      await new Promise((resolve) => setTimeout(resolve, STEP_GAP_MS))
      const stepStarted = performance.now()
      await db.exec(step)
      longestMs = Math.max(longestMs, performance.now() - stepStarted)
      steps++
    }
    countedRows = (await db.query<{ rows: number }>(COUNTED_ROWS)).rows[0]!.rows
    indexesOwedSince = cleanIndexes ? undefined : indexesOwedSince ?? Date.now()
    reply({ vacuumed: { ms: Math.round(performance.now() - started), longestMs: Math.round(longestMs), steps, indexes: cleanIndexes, changed, rows: countedRows } })
  } catch (error) {
    if (!db.closed) reply({ vacuumed: { ms: Math.round(performance.now() - started), longestMs: Math.round(longestMs), steps, indexes: cleanIndexes, changed, error: errorFields(error).message } })
  } finally {
    vacuuming = false
    lastVacuum = Date.now()
    scheduleVacuum()
  }
}

async function handle (request: Request): Promise<unknown> {
  switch (request.op) {
    case 'query': {
      if (request.tx !== undefined && !transactions.has(request.tx)) throw new Error('The transaction has already ended')
      const result = await runPrepared(request.tx !== undefined, request.text, request.values ?? [])
      countChanges(result.affectedRows)
      return result.rows
    }
    case 'begin': return begin()
    case 'end': {
      const open = transactions.get(request.tx)
      if (!open) throw new Error('The transaction has already ended')
      open.finish(request.commit)
      await open.done
      return null
    }
    case 'listen': {
      // PGlite calls back for what the statements it parses itself notify (a COMMIT, for one).
      await db.listen(request.channel, (payload) => notify(request.channel, payload))
      listening.add(request.channel)
      return null
    }
    case 'migrate': {
      await migrate(drizzle({ client: db }), { migrationsFolder })
      return null
    }
    case 'close': {
      clearTimeout(vacuumTimer)
      vacuumTimer = undefined
      if (!db.closed) await db.close()
      return null
    }
  }
}

port.on('message', (request: Request) => {
  handling++
  lastRequest = performance.now()
  handle(request).finally(() => { handling--; lastRequest = performance.now() }).then(
    (result) => reply({ id: request.id, result }),
    (error: unknown) => reply({ id: request.id, error: errorFields(error) }),
  )
})
reply({ ready: true, ...(created && { created }) })
