import { setFlagsFromString } from 'node:v8'
import { Worker } from 'node:worker_threads'
import type { Database } from './database.js'
import { SEED_DIR, type Created } from './embedded-seed.js'
import { NOTIFY_EACH } from './shared.js'
import type { Sql } from './sql.js'
import { VACUUM_POLICY, type VacuumPolicy } from './vacuum.js'

/** What the HTTP thread asks of the database thread (embedded-worker.ts). */
export type Request = { id: number } & (
  | { op: 'query', text: string, values?: readonly unknown[], tx?: number }
  | { op: 'begin' }
  | { op: 'end', tx: number, commit: boolean }
  | { op: 'listen', channel: string }
  | { op: 'migrate' }
  | { op: 'close' }
)

/** What it answers: a request's result or error, a notification, or that it is ready. */
export type Response =
  | { id: number, result: unknown }
  | { id: number, error: { message: string, code?: string, severity?: string } }
  | { notify: string, payload: string }
  | { ready: true, created?: Created }
  | { vacuumed: Vacuumed }

/** A pass of VACUUM and ANALYZE the database thread ran by itself (vacuum.ts). */
export interface Vacuumed {
  /** From the first step to the last, requests answered between them. */
  ms: number
  /** The longest step, from its start to its end: about the longest a request waited for the pass. */
  longestMs: number
  steps: number
  /** Whether it cleaned the indexes (the server was quiet, or they had waited long enough). */
  indexes: boolean
  /** Rows changed since the run before. */
  changed: number
  /** Rows in the tables, as this run counted them. */
  rows?: number
  /** Why it failed, when it did. */
  error?: string
}

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never

export interface WorkerOptions {
  /** Undefined: in memory, gone when closed. */
  dataDir: string | undefined
  /**
   * An in-memory database starts as a copy of this data directory (a tar, as PGlite's dumpDataDir
   * writes it) instead of an empty one: the tests start from one migrated copy, not an initdb each
   * (1-1.5 s against 10 s measured on a busy 2-core machine).
   */
  template?: Uint8Array
  /** A data directory without a database starts as a copy of this one (embedded-seed.ts); none: initdb. */
  seed?: string
  /** When the database vacuums itself; undefined: never. */
  vacuum?: VacuumPolicy
  /** How many statements stay prepared at most (embedded-worker.ts); the least recently run goes first. */
  maxPrepared?: number
}

export interface EmbeddedOptions {
  /** See WorkerOptions. */
  template?: Uint8Array
  /** The migrated data directory an empty `dataDir` starts as a copy of: SEED_DIR unless given; null for initdb. */
  seed?: string | null
  /** Told how, when the open found no database in `dataDir` and made one. */
  created?: (how: Created) => void
  /** When the database vacuums itself (vacuum.ts): VACUUM_POLICY unless given; null: never. */
  vacuum?: VacuumPolicy | null
  /** Told of every VACUUM the database ran by itself. */
  vacuumed?: (run: Vacuumed) => void
  /** See WorkerOptions. */
  maxPrepared?: number
}

/** Thrown for every request once the database thread has stopped; answered 503 (see problem.ts). */
const closedError = () => new Error('PGlite is closed')

/**
 * V8 gives a WASM function its optimizing compiler once it has run for this budget (dynamic tiering;
 * V8's default on Node 20 is 1,800,000). PostgreSQL's start runs much of its code once, and at the
 * default V8 optimized it all as it went: ~1 s of CPU on background threads, of which the database
 * thread then waited 500-700 ms, and ~45 MB of code an idle server kept, for code no request runs
 * again. A thousand times the budget leaves that at the baseline tier, while what every query runs
 * still tiers up within the first seconds of load (measured on PGlite alone, 12,000 queries: the
 * same CPU per round as the default from then on). The flag is read when a thread is created: set
 * before the database's thread is, it changes no other thread (issue 21).
 */
const WASM_TIERING_BUDGET = 1_800_000_000

/**
 * Built, the worker is plain JavaScript beside this file. From source (development, tests) it is
 * TypeScript: a worker does not inherit tsx's loader (nor take it from execArgv on Node 20), so a
 * bootstrap registers tsx in the thread before importing it.
 */
function spawnWorker (options: WorkerOptions): Worker {
  setFlagsFromString(`--wasm-tiering-budget=${WASM_TIERING_BUDGET}`)
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./embedded-worker.js', import.meta.url), { workerData: options })
  const source = JSON.stringify(new URL('./embedded-worker.ts', import.meta.url).href)
  return new Worker(`import('tsx/esm/api').then(({ register }) => { register(); return import(${source}) })`,
    { eval: true, workerData: options })
}

/**
 * Opens PGlite on `dataDir` (created if missing; in memory when undefined) in a thread of its own.
 * Resolves once it is open.
 */
export async function openEmbedded (dataDir: string | undefined, options: EmbeddedOptions = {}): Promise<Database> {
  const database = startEmbedded(dataDir, options)
  await database.ping()
  return database
}

/**
 * Starts opening PGlite in its thread and returns at once: calls made meanwhile wait for it, in the
 * order they were made, and all reject with the cause if it fails to open. Opening takes about a second, which the
 * server spends loading and building the app instead of waiting.
 */
export function startEmbedded (dataDir: string | undefined,
  { template, seed = SEED_DIR, created, vacuum = VACUUM_POLICY, vacuumed, maxPrepared }: EmbeddedOptions = {}): Database {
  const worker = spawnWorker({ dataDir, template, seed: seed ?? undefined, vacuum: vacuum ?? undefined, maxPrepared })
  const pending = new Map<number, { resolve: (value: unknown) => void, reject: (error: Error) => void }>()
  const listeners = new Map<string, Set<(payload: string) => void>>()
  let nextId = 1
  let stopped: Error | undefined

  let open = false
  const stop = (error: Error) => {
    stopped ??= error
    // Before the database opened, what failed is the open: every call made meanwhile says why.
    for (const { reject } of pending.values()) reject(open ? closedError() : error)
    pending.clear()
  }

  worker.on('message', (message: Response) => {
    if ('ready' in message) {
      open = true
      if (message.created) created?.(message.created)
      return
    }
    if ('vacuumed' in message) {
      vacuumed?.(message.vacuumed)
      return
    }
    if ('notify' in message) {
      for (const listener of listeners.get(message.notify) ?? []) listener(message.payload)
      return
    }
    const waiter = pending.get(message.id)
    if (!waiter) return
    pending.delete(message.id)
    if ('error' in message) waiter.reject(Object.assign(new Error(message.error.message), message.error))
    else waiter.resolve(message.result)
  })
  worker.on('error', (error) => stop(error))
  worker.on('exit', (code) => stop(new Error(`the embedded database thread exited (code ${code})`)))

  // Posted at once, before the thread has opened the database too: it takes them in order once open.
  // Held here until its ready message, the server's migrate waited for this thread, busy loading the
  // app, to hear it: 50-950 ms between the open and the migration (issue 21).
  const call = <T>(request: WithoutId<Request>): Promise<T> => {
    if (stopped) return Promise.reject(open ? closedError() : stopped)
    const id = nextId++
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject })
      worker.postMessage({ ...request, id })
    })
  }
  const sqlIn = (tx?: number): Sql => ({
    query: (s, values) => call({ op: 'query', text: s.text, values, ...(tx !== undefined && { tx }) }),
  })

  return {
    kind: 'embedded',
    ...sqlIn(),
    async transaction (work) {
      const tx = await call<number>({ op: 'begin' })
      let result
      try {
        result = await work(sqlIn(tx))
      } catch (error) {
        await call({ op: 'end', tx, commit: false }).catch(() => {})
        throw error
      }
      await call({ op: 'end', tx, commit: true })
      return result
    },
    async ping () { await call({ op: 'query', text: 'select 1' }) },
    async migrate () { await call({ op: 'migrate' }) },
    // In one process PGlite delivers its own NOTIFYs, and there is no connection to lose.
    async listen (channel, handlers) {
      let set = listeners.get(channel)
      if (!set) {
        listeners.set(channel, set = new Set())
        await call({ op: 'listen', channel })
      }
      const listener = handlers.message.bind(handlers)
      set.add(listener)
      return async () => { set.delete(listener) }
    },
    async notify (channel, payloads) {
      await call({ op: 'query', text: NOTIFY_EACH, values: [channel, payloads] })
    },
    async close () {
      if (stopped) return
      try {
        await call({ op: 'close' })
      } finally {
        stop(closedError())
        await worker.terminate()
      }
    },
  }
}
