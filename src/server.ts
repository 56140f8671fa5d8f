import cluster from 'node:cluster'
import { setFlagsFromString } from 'node:v8'
import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import { databaseSecret, embeddedSecret } from './auth/secret.js'
import type { TokenKeys } from './auth/tokens.js'
import { loadConfig, type Config } from './config.js'
import type { Database } from './db/client.js'
import { lockDataDir } from './db/data-dir-lock.js'
import { SEED_DIR, type Created } from './db/embedded-seed.js'
import { exitAfterFailedStart, EXIT_REFUSED } from './start-errors.js'

/** How long SIGTERM waits for requests in flight before the remaining connections are cut. */
const DRAIN_MS = 8_000
/** After this, the process exits whatever is still running. */
const SHUTDOWN_MS = 10_000
/** How far the embedded server's old generation grows past what a full collection kept (see serve). */
const EMBEDDED_HEAP_GROWING_PERCENT = 50

function tokenKeys (config: Config, secret: string): TokenKeys {
  return {
    secret: new TextEncoder().encode(secret),
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    accessTokenTtlSeconds: config.accessTokenTtlSeconds,
    refreshTokenTtlDays: config.refreshTokenTtlDays,
  }
}

/** JWT_SECRET when set; else one kept beside the embedded data, or in the server database for every process. */
async function signingSecret (config: Config, database: Database, migrated: Promise<void>): Promise<string> {
  if (config.jwtSecret !== undefined) return config.jwtSecret
  if (config.databaseUrl === undefined) return embeddedSecret(config.dataDir)
  await migrated // the secret's table
  return databaseSecret(database)
}

/** Early warnings, before the app (and its logger) exists, go to stderr as JSON lines. */
const earlyLog = {
  warn: (details: object, message: string) => console.error(JSON.stringify({ level: 40, time: Date.now(), pid: process.pid, ...details, msg: message })),
}

/** One server process: open the database, migrate, build the app, listen; close gracefully. */
async function serve (config: Config): Promise<void> {
  let releaseLock = () => {}
  let database: Database
  let created: Created | undefined
  let app: FastifyInstance | undefined
  // Each driver is loaded only where it runs: node-postgres cost the embedded server's start ~90 ms
  // of CPU and 14 MB before its database thread could even begin (issue 21).
  if (config.databaseUrl === undefined) {
    // V8 lets the old generation grow to up to 4x what the last full collection kept before it collects
    // again. Under 1,000 connections every request waiting for the database outlives the young
    // generation, so the HTTP thread's old generation swung between ~40 and ~140 MB: the server
    // peaked at 404 MB in 60 s of 1,000 connections, and at 319 MB with growth held to 50% (one
    // run of ../shared/perf's mixed load; issue 21). V8 reads this after every collection.
    setFlagsFromString(`--heap-growing-percent=${EMBEDDED_HEAP_GROWING_PERCENT}`)
    releaseLock = await lockDataDir(config.dataDir)
    const { startEmbedded } = await import('./db/embedded.js')
    database = startEmbedded(config.dataDir, {
      created: (how) => { created = how },
      // A VACUUM stops every request while it runs: how long it took belongs in the log.
      vacuumed: ({ error, ...run }) => {
        if (error === undefined) app?.log.info(run, 'vacuumed the embedded database')
        else app?.log.error({ ...run, message: error }, 'the embedded database failed to vacuum')
      },
    })
  } else {
    const { openPostgres } = await import('./db/postgres.js')
    database = await openPostgres({
      url: config.databaseUrl,
      directUrl: config.databaseDirectUrl,
      poolSize: config.databasePoolSize,
      readConnections: config.databaseReadConnections,
      preparedStatements: config.databasePreparedStatements,
      log: earlyLog,
      // No statement outlives the request timeout: Fastify's covers receiving a request, not a
      // handler waiting on a lock.
      statementTimeoutMs: config.requestTimeoutMs,
    })
  }
  // The embedded database opens and migrates in its own thread while this one loads and builds the
  // app, which queries nothing before it is ready (in listen, below): one after the other, `npm start`
  // took ~3.3 s.
  const migrated = database.migrate()
  migrated.catch(() => {}) // awaited below, once the app is built
  try {
    const { buildApp } = await import('./app.js')
    const secret = await signingSecret(config, database, migrated)
    app = await buildApp(config, { database, keys: tokenKeys(config, secret) })
    await migrated
  } catch (error) {
    // A refused start still closes the database: PGlite then needs no recovery at the next start.
    await migrated.catch(() => {})
    await database.close().catch(() => {})
    releaseLock()
    throw error
  }

  let closing = false
  // Answers sent while draining close their connection. A keep-alive connection that was busy when
  // the drain began (a slow upload) otherwise stays open after its answer and holds app.close()
  // until the client leaves: measured, the deadline then hit, with PGlite left unclosed.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close')
    done(null, payload)
  })
  closeWithGrace({
    delay: SHUTDOWN_MS,
    logger: { error: (message: unknown) => app.log.error(message instanceof Error ? { message: message.message } : { message }, 'shutdown') },
  }, async ({ signal, err }) => {
    closing = true
    if (err) app.log.error({ message: err.message, stack: err.stack }, 'uncaught error; shutting down')
    else app.log.info({ signal }, 'shutting down: draining in-flight requests')
    // A drain still running (a client that never finishes its request) is cut, so that the
    // database still closes cleanly before the deadline.
    setTimeout(() => {
      app.log.warn(`draining took over ${DRAIN_MS / 1000} s; closing the remaining connections`)
      app.server.closeAllConnections()
    }, DRAIN_MS).unref()
    try {
      await app.close() // stops accepting, waits for in-flight requests
      await database.close() // PGlite: a clean close means the next start needs no recovery
    } finally {
      releaseLock()
    }
  })

  await app.listen({ port: config.port, host: config.host })
  if (created === 'initdb') {
    app.log.warn({ dataDir: config.dataDir, seed: SEED_DIR }, 'the embedded database was created by initdb, at several times the memory and time of ' +
      'a copy of the migrated seed, which is missing: `npm run build` makes it')
  }
  app.log.info({ database: database.kind, dataDir: database.kind === 'embedded' ? config.dataDir : undefined, created }, 'taskbase is ready')
}

/**
 * WORKERS > 1: this process only forks the servers, which share the port (node:cluster hands out
 * connections), and passes a stop signal on to them. A server that dies after it was serving is
 * replaced, at most once a second; one that dies before it ever listened (a bad DATABASE_URL) stops
 * them all, as a single process would have.
 */
function supervise (config: Config): void {
  let stopping = false
  let lastFork = 0
  const listened = new Set<number>()
  const fork = () => {
    const wait = Math.max(0, lastFork + 1_000 - Date.now())
    setTimeout(() => { lastFork = Date.now(); if (!stopping) cluster.fork() }, wait)
  }
  const stop = (signal: NodeJS.Signals, code = 0) => {
    if (stopping) return
    stopping = true
    process.exitCode = code
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal)
    setTimeout(() => process.exit(1), SHUTDOWN_MS + 1_000).unref()
  }
  cluster.on('listening', (worker) => listened.add(worker.id))
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping && !listened.has(worker.id)) {
      earlyLog.warn({ workerPid: worker.process.pid, code, signal }, 'a server process failed to start; stopping')
      stop('SIGTERM', code === EXIT_REFUSED ? EXIT_REFUSED : 1) // its message is on stderr already
    }
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit()
      return
    }
    earlyLog.warn({ workerPid: worker.process.pid, code, signal }, 'a server process exited; starting another')
    fork()
  })
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  for (let i = 0; i < config.workers; i++) cluster.fork()
}

// Async, so that loadConfig's error rejects into the handler below rather than escaping as an
// uncaught exception (a stack trace, exit 1).
async function main (): Promise<void> {
  const config = loadConfig()
  if (config.workers > 1 && cluster.isPrimary) supervise(config)
  else await serve(config)
}

main().catch((error: unknown) => exitAfterFailedStart(error, 'taskbase failed to start'))
