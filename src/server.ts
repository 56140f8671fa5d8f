import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './app.js'
import type { TokenKeys } from './auth/tokens.js'
import { ConfigError, loadConfig, type Config } from './config.js'
import { openEmbedded, openPostgres, type Database } from './db/client.js'
import { DataDirLockedError, lockDataDir } from './db/lock.js'
import { rateLimitQueries } from './http/rate-limit.js'
import { syncQueries } from './sync/queries.js'
import { taskQueries } from './tasks/queries.js'

/**
 * The embedded default needs no configuration, so it invents a signing secret on first start and
 * keeps it beside the data (mode 0600): tokens survive a restart.
 */
function embeddedSecret (dataDir: string): string {
  const path = join(dataDir, 'jwt-secret')
  try {
    return readFileSync(path, 'utf8').trim()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    const secret = randomBytes(48).toString('base64url')
    writeFileSync(path, `${secret}\n`, { mode: 0o600, flag: 'wx' })
    return secret
  }
}

function tokenKeys (config: Config, secret: string): TokenKeys {
  return {
    secret: new TextEncoder().encode(secret),
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    accessTokenTtlSeconds: config.accessTokenTtlSeconds,
    refreshTokenTtlDays: config.refreshTokenTtlDays,
  }
}

async function main (): Promise<void> {
  const config = loadConfig()
  let releaseLock = () => {}
  let database: Database
  let app: FastifyInstance | undefined
  // The database opens before the app (and its logger) exists: early warnings go to stderr as JSON.
  const log = {
    warn: (details: object, message: string) => app
      ? app.log.warn(details, message)
      : console.error(JSON.stringify({ level: 40, time: Date.now(), ...details, msg: message })),
  }
  let secret: string
  if (config.databaseUrl === undefined) {
    releaseLock = lockDataDir(config.dataDir)
    database = await openEmbedded(config.dataDir)
    secret = config.jwtSecret ?? embeddedSecret(config.dataDir)
  } else {
    database = await openPostgres({
      url: config.databaseUrl,
      directUrl: config.databaseDirectUrl,
      poolSize: config.databasePoolSize,
      log,
      // No statement outlives the request timeout: Fastify's covers receiving a request, not a
      // handler waiting on a lock.
      statementTimeoutMs: config.requestTimeoutMs,
    })
    secret = config.jwtSecret!
  }
  await database.migrate()

  app = await buildApp(config, { database, keys: tokenKeys(config, secret) })
  const tasks = taskQueries(database.db)
  const limits = rateLimitQueries(database.db)
  const sync = syncQueries(database.db)
  const pruning = setInterval(() => {
    tasks.pruneIdempotencyKeys().catch((error: Error) => app.log.warn({ message: error.message }, 'pruning idempotency keys failed'))
    limits.prune().catch((error: Error) => app.log.warn({ message: error.message }, 'pruning rate-limit counters failed'))
    sync.prune(config.syncRetentionDays).catch((error: Error) => app.log.warn({ message: error.message }, 'pruning the change log failed'))
    sync.pruneTickets().catch((error: Error) => app.log.warn({ message: error.message }, 'pruning event tickets failed'))
  }, 60 * 60 * 1000).unref()

  let closing = false
  // Answers sent while draining close their connection. A keep-alive connection that was busy when
  // the drain began (a slow upload) otherwise stays open after its answer and holds app.close()
  // until the client leaves: measured, the 10 s limit below then hit, with PGlite left unclosed.
  app.addHook('onSend', async (_request, reply) => { if (closing) reply.header('connection', 'close') })
  const shutdown = async (signal: string) => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'shutting down: draining in-flight requests')
    clearInterval(pruning)
    // A drain still running at 8 s (a client that never finishes its request, an open stream) is
    // cut, so that the database still closes cleanly; a hang after that still ends the process.
    setTimeout(() => {
      app.log.warn('draining took over 8 s; closing the remaining connections')
      app.server.closeAllConnections()
    }, 8_000).unref()
    setTimeout(() => { app.log.error('shutdown took over 10 s; exiting'); process.exit(1) }, 10_000).unref()
    try {
      await app.close() // stops accepting, waits for in-flight requests
      await database.close() // PGlite: a clean close means the next start needs no recovery
    } finally {
      releaseLock()
    }
    process.exit(0)
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))

  await app.listen({ port: config.port, host: config.host })
  app.log.info({ database: database.kind, dataDir: database.kind === 'embedded' ? config.dataDir : undefined }, 'taskbase is ready')
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError || error instanceof DataDirLockedError) {
    console.error(error.message)
  } else {
    console.error('taskbase failed to start:', error instanceof Error ? error.message : error)
  }
  process.exit(1)
})
