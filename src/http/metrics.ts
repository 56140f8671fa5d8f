import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { Database } from '../db/client.js'
import { toProblem } from './errors.js'
import { forbidden, ProblemType, unauthorized } from './problem.js'
import { errorResponses } from './schemas.js'
import type { LimitName } from '../limits/rate-limit.js'
import type { CreateBatchStats } from '../tasks/create-batch.js'

export interface Metrics {
  /** Counts a request refused by a rate limit. */
  rateLimited (name: LimitName): void
  /** Reports the event streams (open, and the bytes they hold unsent) at each scrape. */
  eventStreams (stats: () => { open: number, bufferedBytes: number }): void
  /** Reports the creates gathered into one statement (tasks/create-batch.ts) at each scrape. */
  taskCreates (stats: () => Readonly<CreateBatchStats>): void
}

export interface MetricsOptions {
  database: Database
  /** When set, scrapers send `Authorization: Bearer <token>`; unset, only loopback may scrape. */
  token: string | undefined
}

const isLoopback = (address: string | undefined) =>
  address !== undefined && (/^127\./.test(address) || address === '::1' || /^::ffff:127\./i.test(address))

/** How many request series keep their children (see the onResponse hook). */
const MAX_KEPT_SERIES = 1_000

const digest = (value: string) => createHash('sha256').update(value).digest()

/**
 * Who may read /metrics. With METRICS_TOKEN, whoever presents it. Without, a scraper on the same
 * machine only: the socket's address must be loopback and the request must not have come through
 * a proxy (an X-Forwarded-For or Forwarded header), since a reverse proxy on the same host would
 * otherwise open the metrics to everyone it serves.
 */
function metricsAccess (token: string | undefined) {
  const expected = token === undefined ? undefined : digest(token)
  return async (request: FastifyRequest) => {
    if (expected === undefined) {
      const forwarded = request.headers['x-forwarded-for'] !== undefined || request.headers.forwarded !== undefined
      if (forwarded || !isLoopback(request.socket.remoteAddress)) {
        throw forbidden('Metrics are served to loopback addresses only; set METRICS_TOKEN to scrape from elsewhere')
      }
      return
    }
    const match = /^Bearer (\S+)$/i.exec(request.headers.authorization ?? '')
    // Compared as digests: equal lengths, constant time.
    if (!match?.[1] || !timingSafeEqual(digest(match[1]), expected)) throw unauthorized('A valid metrics token is required')
  }
}

/**
 * Prometheus metrics at GET /metrics, in a registry of this app's own (several apps in one
 * process, as in the tests, never share counters). Register before the feature scopes: the
 * hooks then see every route.
 */
export function registerMetrics (app: FastifyInstance, { database, token }: MetricsOptions): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })

  const labelNames = ['method', 'route', 'status_code'] as const
  const requests = new Counter({
    name: 'http_requests_total', help: 'HTTP requests answered, by route pattern and status', labelNames, registers: [registry],
  })
  const duration = new Histogram({
    name: 'http_request_duration_seconds', help: 'Time to answer an HTTP request, by route pattern and status', labelNames, registers: [registry],
  })
  const databaseErrors = new Counter({
    name: 'taskbase_database_errors_total', help: 'Requests answered 503 because the database was unavailable', registers: [registry],
  })
  const limited = new Counter({
    name: 'taskbase_rate_limited_total', help: 'Requests refused with 429, by limit', labelNames: ['limit'] as const, registers: [registry],
  })
  if (database.poolStats) {
    const stats = database.poolStats.bind(database)
    const pool = (name: string, help: string, read: (s: ReturnType<typeof stats>) => number) =>
      new Gauge({ name, help, registers: [registry], collect () { this.set(read(stats())) } })
    pool('taskbase_db_pool_max', 'Most connections the pool may open', (s) => s.max)
    pool('taskbase_db_pool_size', 'Connections the pool holds open', (s) => s.open)
    pool('taskbase_db_pool_in_use', 'Connections checked out by a query or transaction', (s) => s.inUse)
    pool('taskbase_db_pool_waiting', 'Queries waiting for a free connection', (s) => s.waiting)
    pool('taskbase_db_read_connections', 'Read connections open (pipeline mode, besides the pool)', (s) => s.readConnections)
    pool('taskbase_db_reads_pending', 'Reads sent down the read connections and not yet answered', (s) => s.readsPending)
  }

  // Each series' children, kept: prom-client hashes a labels object on every call, and the two
  // calls per request were 8% of what a request allocated under load (heap sampling, issue 21).
  const series = new Map<string, { count: Counter.Internal, time: Histogram.Internal<typeof labelNames[number]> }>()
  app.addHook('onResponse', (request, reply, done) => {
    // The pattern (/api/v1/tasks/:id), never the raw URL: one series per route, not per id.
    const route = request.routeOptions.url ?? 'unmatched'
    const key = `${request.method} ${reply.statusCode} ${route}`
    let children = series.get(key)
    if (children === undefined) {
      const labels = { method: request.method, route, status_code: reply.statusCode }
      children = { count: requests.labels(labels), time: duration.labels(labels) }
      // Routes, methods and statuses are few; a flood of odd methods must not grow this for ever.
      if (series.size < MAX_KEPT_SERIES) series.set(key, children)
    }
    children.count.inc()
    children.time.observe(reply.elapsedTime / 1000)
    done()
  })
  app.addHook('onError', async (_request, _reply, error) => {
    if (toProblem(error).type === ProblemType.databaseUnavailable) databaseErrors.inc()
  })

  app.get('/metrics', {
    schema: {
      tags: ['operations'],
      operationId: 'metrics', summary: 'Prometheus metrics; needs METRICS_TOKEN as a Bearer token, or a loopback client when unset',
      response: {
        200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } },
        ...errorResponses([401, 'METRICS_TOKEN is set and the request does not carry it'], [403, 'Without METRICS_TOKEN, only loopback clients not behind a proxy may scrape']),
      },
    },
    onRequest: metricsAccess(token),
  }, async (_request, reply) => {
    const text = await registry.metrics()
    return reply.type(registry.contentType).send(text)
  })

  return {
    rateLimited: (name) => limited.inc({ limit: name }),
    eventStreams (stats) {
      new Gauge({ name: 'taskbase_event_streams', help: 'Event streams open in this process', registers: [registry], collect () { this.set(stats().open) } })
      new Gauge({
        name: 'taskbase_event_stream_buffered_bytes',
        help: 'Output of open event streams not yet taken by their clients (each stream ends past 1 MiB)',
        registers: [registry],
        collect () { this.set(stats().bufferedBytes) },
      })
    },
    taskCreates (stats) {
      // Totals kept by the batcher, read at each scrape.
      const total = (name: string, help: string, read: (s: CreateBatchStats) => number) =>
        new Counter({ name, help, registers: [registry], collect () { this.reset(); this.inc(read(stats())) } })
      total('taskbase_task_create_batches_total', 'Statements that created the tasks of several users at once', (s) => s.batches)
      total('taskbase_task_creates_batched_total', 'Tasks created by those statements', (s) => s.rows)
    },
  }
}
