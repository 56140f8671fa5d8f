import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { and, gt, inArray, lte, sql } from 'drizzle-orm'
import type { Db } from '../db/client.js'
import { rateLimits } from '../db/schema.js'
import { Problem, ProblemJson, ProblemType } from './problem.js'

/** Where a key stands in its window after a hit (or a look). */
export interface LimitState {
  count: number
  /** Until the window ends, by the database's clock (every process shares it), at least 1. */
  secondsLeft: number
}

/** A limit applied to one key: the state, and whether this request goes over. */
export interface Decision {
  limit: number
  remaining: number
  secondsLeft: number
  exceeded: boolean
}

/**
 * Fixed-window counters in PostgreSQL, so every process on one database enforces one limit.
 * A window that has ended restarts at the next hit; expired rows are harmless, and `prune` (run
 * by the server's hourly timer, never by a request) only keeps the table small.
 */
const secondsLeft = sql<number>`greatest(1, ceil(extract(epoch from ${rateLimits.resetAt} - now())))::int`

export function rateLimitQueries (db: Db) {
  return {
    /**
     * Counts one hit on each key, in one statement (one round trip). Keys must be distinct: a
     * multi-row INSERT ... ON CONFLICT cannot touch one row twice.
     */
    async hit (keys: string[], windowSeconds: number): Promise<Map<string, LimitState>> {
      const window = sql`${windowSeconds}::int * interval '1 second'`
      const rows = await db.insert(rateLimits)
        .values(keys.map((key) => ({ key, count: 1, resetAt: sql`now() + ${window}` })))
        .onConflictDoUpdate({
          target: rateLimits.key,
          set: {
            count: sql`case when ${rateLimits.resetAt} <= now() then 1 else ${rateLimits.count} + 1 end`,
            resetAt: sql`case when ${rateLimits.resetAt} <= now() then now() + ${window} else ${rateLimits.resetAt} end`,
          },
        })
        .returning({ key: rateLimits.key, count: rateLimits.count, secondsLeft })
      return new Map(rows.map(({ key, ...state }) => [key, state]))
    },

    /** The live windows among `keys`, without counting: keys with no live window are absent. */
    async peek (keys: string[]): Promise<Map<string, LimitState>> {
      const rows = await db.select({ key: rateLimits.key, count: rateLimits.count, secondsLeft }).from(rateLimits)
        .where(and(inArray(rateLimits.key, keys), gt(rateLimits.resetAt, sql`now()`)))
      return new Map(rows.map(({ key, ...state }) => [key, state]))
    },

    /** Deletes the rows whose window has ended; returns how many. */
    async prune (): Promise<number> {
      const rows = await db.delete(rateLimits).where(lte(rateLimits.resetAt, sql`now()`))
        .returning({ key: rateLimits.key })
      return rows.length
    },
  }
}

export type RateLimitQueries = ReturnType<typeof rateLimitQueries>

/** What a limit decides for a count already taken (`hit`) or looked at (`peek`). */
export function decide (limit: number, state: LimitState | undefined,
  { counted, windowSeconds }: { counted: boolean, windowSeconds: number }): Decision {
  const count = state?.count ?? 0
  // No live window: the next hit would start one.
  const secondsLeft = state?.secondsLeft ?? windowSeconds
  // A hit has counted this request already: the limit-th request is the last one allowed. A peek
  // asks whether one more may start.
  const exceeded = counted ? count > limit : count >= limit
  return { limit, remaining: Math.max(0, limit - count), secondsLeft, exceeded }
}

/**
 * Sets RateLimit-Limit/-Remaining/-Reset, unless a limit closer to running out already has:
 * a client sees the limit that will stop it first.
 */
export function setLimitHeaders (reply: FastifyReply, decision: Decision): void {
  const shown = Number(reply.getHeader('ratelimit-remaining') ?? Infinity)
  if (decision.remaining > shown) return
  reply.header('ratelimit-limit', String(decision.limit))
  reply.header('ratelimit-remaining', String(decision.remaining))
  reply.header('ratelimit-reset', String(decision.secondsLeft))
}

/** Which limit refused a request, as the `limit` label of the rate-limited counter. */
export type LimitName = 'login_failures' | 'auth' | 'api'

export type OnRateLimited = (name: LimitName) => void

/** The 429 for an exceeded limit; `Retry-After` says when its window ends. */
export function rateLimited (decision: Decision, detail: string): Problem {
  return new Problem(429, detail, undefined, ProblemType.rateLimited, {
    'retry-after': String(decision.secondsLeft),
    'ratelimit-limit': String(decision.limit),
    'ratelimit-remaining': '0',
    'ratelimit-reset': String(decision.secondsLeft),
  })
}

export interface RequestLimit {
  name: LimitName
  /** Requests per window; 0 means this limit is off and nothing is registered. */
  limit: number
  windowSeconds: number
  /** The counter a request belongs to, e.g. `api:user:<id>`. */
  key (request: FastifyRequest): string
  detail: string
}

/**
 * Counts every request of `scope` (and its children) against one limit, in an onRequest hook
 * registered after any guard already in the scope, so `key` may use `request.userId`. The routes
 * document the 429.
 */
export function limitRequests (scope: FastifyInstance, limits: RateLimitQueries, onLimited: OnRateLimited,
  { name, limit, windowSeconds, key, detail }: RequestLimit): void {
  if (limit === 0) return
  scope.addHook('onRoute', (route) => {
    const schema = route.schema as { response?: Record<string, unknown> } | undefined
    if (schema?.response && !schema.response[429]) {
      route.schema = { ...schema, response: { ...schema.response, 429: ProblemJson } } as typeof route.schema
    }
  })
  scope.addHook('onRequest', async (request, reply) => {
    const k = key(request)
    const decision = decide(limit, (await limits.hit([k], windowSeconds)).get(k), { counted: true, windowSeconds })
    if (decision.exceeded) {
      onLimited(name)
      throw rateLimited(decision, detail)
    }
    setLimitHeaders(reply, decision)
  })
}
