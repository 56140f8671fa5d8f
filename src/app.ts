import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { authenticator } from './auth/authenticate.js'
import { externalVerifier } from './auth/external.js'
import { requireUser } from './auth/guard.js'
import { authRoutes } from './auth/routes.js'
import { sessionQueries } from './auth/sessions.js'
import type { TokenKeys } from './auth/tokens.js'
import { userCache } from './auth/user-cache.js'
import { classicRoutes, isReservedUserId } from './classic/routes.js'
import type { Config } from './config.js'
import type { Database } from './db/client.js'
import { noticeFeed } from './events/feed.js'
import { eventHub } from './events/hub.js'
import { eventRoutes, ticketRoutes } from './events/routes.js'
import { ticketQueries } from './events/tickets.js'
import { compileOnUse } from './http/compile-on-use.js'
import { registerCors } from './http/cors.js'
import { clientErrorHandler, frameworkErrors, noRoute, registerProblemHandlers } from './http/errors.js'
import { healthRoutes } from './http/health.js'
import { guardInput } from './http/input-guard.js'
import { requestLogger } from './http/logging.js'
import { registerMetrics } from './http/metrics.js'
import { registerOpenApi } from './http/openapi.js'
import { routeTable } from './http/routes-table.js'
import { validatorCompiler } from './http/validation.js'
import { runEvery } from './jobs/periodic.js'
import { scheduler } from './jobs/scheduler.js'
import { loginLimit } from './limits/login-limit.js'
import { mcpChallenge, mcpMetadataRoutes, mcpRoutes } from './mcp/routes.js'
import { mcpService } from './mcp/server.js'
import { mcpTools } from './mcp/tools.js'
import { batchedCounter, limitRequests, rateLimitQueries } from './limits/rate-limit.js'
import { projectQueries } from './projects/queries.js'
import { projectRoutes } from './projects/routes.js'
import { fireReminders } from './reminders/firing.js'
import { syncCursors } from './sync/cursor.js'
import { syncQueries } from './sync/queries.js'
import { syncRoutes } from './sync/routes.js'
import { taskQueries } from './tasks/queries.js'
import { taskRoutes } from './tasks/routes.js'
import { taskTree } from './tasks/tree.js'
import { userQueries } from './users/queries.js'
import { userRoutes } from './users/routes.js'
import { webhookDelivery } from './webhooks/deliver.js'
import { webhookQueries } from './webhooks/queries.js'
import { webhookRoutes } from './webhooks/routes.js'
import { secretBox } from './webhooks/secrets.js'
import { webhookSender } from './webhooks/sender.js'
import { webhookUsers } from './webhooks/users.js'

export interface Deps {
  database: Database
  keys: TokenKeys
  /** Where log lines go; standard output when omitted. Tests pass a stream to read them. */
  logStream?: { write (line: string): void }
  /** Comment lines on idle event streams this often, in place of EVENT_HEARTBEAT_SECONDS (a test wanting them sooner). */
  eventHeartbeatMs?: number
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Compiles every route schema not yet used (they compile at their first use: http/compile-on-use.ts);
     * returns how many. A test calls it to show every schema compiles.
     */
    compileSchemas (): number
  }
}

/** Longer than the longest parameter we accept (255), so that one is refused by its schema, with a 422/400. */
const MAX_PARAM_LENGTH = 300

/** A client's X-Request-Id is kept when it is short and plain, so logs join across services. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

export async function buildApp (config: Config, deps: Deps): Promise<FastifyInstance> {
  const { database, keys, logStream } = deps
  const logger = requestLogger(config.logLevel, logStream)
  const schemas = compileOnUse()
  const app = Fastify({
    logger: logger.options,
    // A path parameter may be an identity provider's user id of up to 255 characters (classic routes).
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // request.ip: the socket's address, or X-Forwarded-For's only from the proxies TRUST_PROXY names.
    trustProxy: config.trustProxy,
    bodyLimit: config.bodyLimitBytes,
    requestTimeout: config.requestTimeoutMs,
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && SANE_REQUEST_ID.test(given) ? given : randomUUID()
    },
    logController: logger.controller,
    // Proto-poisoning keys in JSON are refused (400), not stripped.
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // Refusals that happen before routing answer problem+json too (431, bad framing, bad URLs).
    clientErrorHandler,
    frameworkErrors,
    schemaController: { compilersFactory: { buildSerializer: schemas.serializers } },
  }).withTypeProvider<TypeBoxTypeProvider>()
  app.decorate('compileSchemas', schemas.compileAll)

  app.addHook('onClose', async () => { logger.stop() })
  await registerCors(app, config.corsOrigins)
  app.setValidatorCompiler(schemas.validators(validatorCompiler()))
  app.removeContentTypeParser('text/plain') // JSON only: anything else is a 415
  // Many front ends send Content-Type: application/json on every request, bodiless ones too
  // (a DELETE, a toggle): an empty body is no body, not a JSON syntax error.
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') done(null, undefined)
    else parseJson(request, body as string, done)
  })
  const routes = routeTable(app, { maxParamLength: MAX_PARAM_LENGTH, refuses: isReservedUserId })
  registerProblemHandlers(app, routes)
  guardInput(app)
  // Hooks on every request are callbacks, not async functions: no promise per request.
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id)
    done(null, payload)
  })

  await registerOpenApi(app)

  await app.register(healthRoutes, { database })
  // Before the feature scopes, so that its hooks count every route.
  const metrics = registerMetrics(app, { database, token: config.metricsToken })

  const users = userQueries(database)
  // The process's one LISTEN: other processes' changes, deletions and revocations reach it.
  const feed = noticeFeed(database, app.log)
  const sessions = sessionQueries(database, keys, { sent: feed.echo })
  const cursors = syncCursors(keys.secret, config.syncRetentionDays * 86_400_000)
  // After a write commits: the streams hear of it, and a write of a user with webhook endpoints wakes
  // this process's scheduler for the events it queued (no NOTIFY in the write: migration 0017).
  const hooked = webhookUsers(database, feed, app.log)
  const changed = (userId: string) => {
    feed.announce(userId)
    if (hooked.has(userId)) jobs.runNow()
  }
  // Webhook endpoints' secrets are sealed under a key derived from the server's signing secret.
  const box = secretBox(keys.secret)
  const deliveries = webhookDelivery({
    database, logger: app.log, box, cursors, sender: webhookSender({ allowPrivate: config.webhooksAllowPrivate }),
    retrySchedule: config.webhooksRetrySchedule, leaseSeconds: config.jobsLeaseSeconds, wake: (at) => jobs.soon(at),
  })
  // Reminders and webhook deliveries: work due at a time, claimed by one process of however many.
  const jobs = scheduler({
    database, feed, logger: app.log, leaseSeconds: config.jobsLeaseSeconds,
    handlers: {
      reminder: fireReminders(database, { graceMinutes: config.reminderGraceMinutes, leaseSeconds: config.jobsLeaseSeconds, changed }),
      webhook: deliveries.handler,
    },
  })
  const webhooks = webhookQueries(database, { box, allowPrivate: config.webhooksAllowPrivate, queued: jobs.soon, added: hooked.added })
  const tasks = taskQueries(database, {
    changed,
    maxTasksPerUser: config.tasksPerUserMax,
    reminderDue: jobs.soon,
    // PostgreSQL's 5 s is its pool's wait for a connection. The embedded database has no pool: every
    // statement waits its turn however long it takes, and a create waiting for a batch does too (under
    // 1,000 connections a create answered 503 after 5 s where reads waited as long and were answered).
    ...(database.kind === 'embedded' && { createWaitMs: config.requestTimeoutMs }),
  })
  const tree = taskTree(database, { changed })
  const projects = projectQueries(database, { changed, maxProjectsPerUser: config.projectsPerUserMax })
  const sync = syncQueries(database)
  const tickets = ticketQueries(database)
  const limits = rateLimitQueries(database)

  const cache = userCache(feed)
  const hub = eventHub({ database, feed, log: sync, logger: app.log, maxStreamsPerUser: config.eventStreamsPerUser })
  app.addHook('onReady', async () => {
    await feed.start()
    await hooked.load()
    jobs.start()
  })
  metrics.eventStreams(() => hub.stats())
  metrics.taskCreates(() => tasks.createStats())
  // Open streams would keep the server from closing: end them first.
  app.addHook('preClose', async () => {
    hub.close()
    await jobs.stop()
    await deliveries.stop()
    hooked.close()
  })
  app.addHook('onClose', async () => { await feed.close() })

  const authenticate = authenticator({ keys, users, sessions, cache, external: externalVerifier(config.externalAuth) })
  /** A ticket stands for the principal that bought it, while that principal still stands. */
  const redeemTicket = async (ticket: string) => {
    const principal = await tickets.use(ticket)
    return principal && await authenticate.stillValid(principal) ? principal : undefined
  }

  // Kept small by the hour, never in a request.
  runEvery(app, 60 * 60_000, {
    'idempotency keys': () => tasks.pruneIdempotencyKeys(),
    'rate-limit counters': () => limits.prune(),
    'the change log': () => sync.prune(config.syncRetentionDays),
    'event tickets': () => tickets.prune(),
    'webhook delivery attempts': () => webhooks.prune(),
    'the users with webhook endpoints': async () => { await hooked.load(); return 0 },
  })

  // Counters in PostgreSQL: every process on the database enforces the same limits.
  const { rateLimits } = config
  /** One budget per user across /api/v1, the classic /api and /mcp, counted mostly in memory. */
  const apiCounter = rateLimits.apiPerMinute > 0 ? batchedCounter(limits, rateLimits.apiPerMinute, 60) : undefined
  if (apiCounter) app.addHook('onClose', async () => { await apiCounter.close() })
  const limitApi = (scope: FastifyInstance) => limitRequests(scope, limits, metrics.rateLimited, {
    name: 'api', limit: rateLimits.apiPerMinute, windowSeconds: 60, key: (request) => `api:user:${request.userId}`,
    detail: 'Too many requests for this account; slow down and retry after the Retry-After seconds',
    counter: apiCounter,
  })

  await app.register(async (api) => {
    const login = loginLimit(limits, { failures: rateLimits.loginFailures, windowSeconds: rateLimits.loginWindowSeconds }, metrics.rateLimited)
    await api.register(async (auth) => {
      limitRequests(auth, limits, metrics.rateLimited, {
        name: 'auth', limit: rateLimits.authPerMinute, windowSeconds: 60, key: (request) => `auth:ip:${request.ip}`,
        detail: 'Too many sign-in requests from this address; retry after the Retry-After seconds',
      })
      await auth.register(authRoutes, { users, sessions, loginLimit: login })
    })
    await api.register(async (signedIn) => {
      requireUser(signedIn, authenticate, { redeemTicket })
      limitApi(signedIn)
      await signedIn.register(userRoutes, { users, sessions, forgetUser: cache.forget, loginLimit: login })
      await signedIn.register(taskRoutes, { tasks, tree })
      await signedIn.register(projectRoutes, { projects })
      await signedIn.register(webhookRoutes, { webhooks })
      await signedIn.register(syncRoutes, { sync, cursors })
      await signedIn.register(ticketRoutes, { tickets })
      await signedIn.register(eventRoutes, { sync, cursors, hub, heartbeatMs: deps.eventHeartbeatMs ?? config.eventHeartbeatMs })
    })
  }, { prefix: '/api/v1' })

  await app.register(async (classic) => {
    // `/api/v1/...` is never a classic `{user_id}` of "v1": PUT /api/v1/tasks/{id} is a 405, not a 403.
    classic.addHook('onRequest', (request, _reply, done) => {
      done(isReservedUserId(request.params as Record<string, string>) ? noRoute(routes, request) : undefined)
    })
    requireUser(classic, authenticate)
    limitApi(classic)
    await classic.register(classicRoutes, { tasks })
  }, { prefix: '/api' })

  // Agents: MCP on the same tokens, limits and service code as the REST routes.
  await app.register(mcpMetadataRoutes, { issuer: config.externalAuth.issuer })
  await app.register(async (mcp) => {
    requireUser(mcp, authenticate, { challenge: mcpChallenge })
    const countMore = limitApi(mcp)
    await mcp.register(mcpRoutes, { service: mcpService(mcpTools({ tasks, tree, projects })), countMore })
  })

  return app
}
